-- SCD type-2 histories of tables: a version per committed state of a key,
-- type-1 columns, the delete and TRUNCATE policies, the backfill, as_of,
-- the current view, monitoring, wrong calls, and who may see what; the
-- calls of histories of streams (their versions: test/t/031).
SET TimeZone = 'UTC';
\set VERBOSITY terse
\set SHOW_CONTEXT never

CREATE TABLE customers (
    id      int PRIMARY KEY,
    name    text NOT NULL,
    segment text,
    notes   text,            -- tracked, large: stored out of line
    email   text,            -- type 1
    visits  int DEFAULT 0);  -- not kept
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE customers ALTER COLUMN notes SET STORAGE EXTERNAL;
INSERT INTO customers (id, name, segment, notes, email) VALUES
    (1, 'ann', 'gold', NULL, 'a@x'),
    (2, 'bob', 'silver', NULL, 'b@x'),
    (3, 'cy', NULL, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i), 'c@x');

--
-- 1. Wrong calls: an errcode, a message and a hint each
--
\set VERBOSITY default
SELECT flowstate.create_history('h', 'customers', '{nope}');
SELECT flowstate.create_history('h', 'customers', '{name}');
SELECT flowstate.create_history('h', 'customers', '{id}', tracked => '{segment,email}', type1 => '{email}');
SELECT flowstate.create_history('h', 'customers', '{id}', tracked => '{id,name}');
SELECT flowstate.create_history('h', 'customers', '{id}', on_delete => 'forget');
SELECT flowstate.create_history('h', 'customers', '{id}', on_truncate => 'delete');
SELECT flowstate.create_history('h', 'customers', NULL);
CREATE TABLE plain (id int PRIMARY KEY, v int);
SELECT flowstate.create_history('h', 'plain', '{id}');
CREATE VIEW customers_view AS SELECT * FROM customers;
SELECT flowstate.create_history('h', 'customers_view', '{id}');
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
SELECT flowstate.create_history('h', 'parted', '{id}');
CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);
ALTER TABLE scratch REPLICA IDENTITY FULL;
SELECT flowstate.create_history('h', 'scratch', '{id}');
SELECT flowstate.drop_history('customers');
SELECT * FROM flowstate.as_of(NULL::customers, now());
SELECT flowstate.create_history('h', 'customers', '{id}', sequence_column => 'name');
-- streams: their own columns, one worker
CREATE SERVER hist_kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '127.0.0.1:1');
CREATE FOREIGN TABLE prices (
    sku     text OPTIONS (metadata 'key'),
    price   numeric,
    at      timestamptz,
    gone    boolean,
    note    text)
  SERVER hist_kafka OPTIONS (topic 'prices', format 'json');
SELECT flowstate.create_history('h', 'prices', '{sku}', sequence_column => 'price');
SELECT flowstate.create_history('h', 'prices', '{sku}', delete_column => 'note');
SELECT flowstate.create_history('h', 'prices', '{sku}', tracked => '{price,at}', sequence_column => 'at');
SELECT flowstate.create_history('h', 'prices', '{sku}', on_truncate => 'ignore');
ALTER FOREIGN TABLE prices OPTIONS (ADD workers '2');
SELECT flowstate.create_history('h', 'prices', '{sku}');
ALTER FOREIGN TABLE prices OPTIONS (DROP workers);
-- a stream its worker could not read is refused now, not in the worker
CREATE FOREIGN TABLE int_keys (id int OPTIONS (metadata 'key'), v text)
  SERVER hist_kafka OPTIONS (topic 'int_keys', format 'json');
SELECT flowstate.create_history('h', 'int_keys', '{id}');
DROP FOREIGN TABLE int_keys;
\set VERBOSITY terse
SELECT count(*) AS histories FROM flowstate.history;

-- a stream's history: its table, the table of its messages, running from
-- the start (no backfill); dropped with both
SELECT flowstate.create_history('price_history', 'prices', '{sku}', type1 => '{note}',
                                sequence_column => 'at', delete_column => 'gone');
\d price_history
\d price_history_changes
SELECT status, tracked_columns, type1_columns, sequence_column, delete_column, changes,
       started_at IS NOT NULL AS started, lag_bytes
  FROM flowstate.histories;
-- it keeps one worker
\set VERBOSITY default
ALTER FOREIGN TABLE prices OPTIONS (ADD workers '3');
\set VERBOSITY terse
ALTER FOREIGN TABLE prices OPTIONS (ADD workers '1');
ALTER FOREIGN TABLE prices OPTIONS (DROP workers);
SELECT flowstate.drop_history('price_history');
SELECT count(*) FROM pg_class WHERE relname LIKE 'price\_history%';
DROP FOREIGN TABLE prices;
DROP SERVER hist_kafka;
-- its worker leaves with it
SELECT public.wait_for($$SELECT count(*) = 0 FROM flowstate.workers WHERE kind = 'kafka'$$) AS kafka_worker_gone;

--
-- 2. A history over rows already there: version 1 of each, from when the
-- history started
--
SELECT flowstate.create_history('customers_history', 'customers', '{id}',
                                tracked => '{name,segment,notes}', type1 => '{email}');
SELECT flowstate.wait_for(timeout => '30s');
\d customers_history
SELECT status, key_columns, tracked_columns, type1_columns, versions_written,
       started_at IS NOT NULL AS started, last_error
  FROM flowstate.histories;
SELECT id, name, segment, length(notes) AS notes, email, version, is_current,
       valid_to = 'infinity' AS open,
       valid_from = (SELECT started_at FROM flowstate.history) AS from_start
  FROM customers_history ORDER BY id, version;

--
-- 3. Changes, each in its transaction
--
UPDATE customers SET segment = 'platinum' WHERE id = 1;            -- a new version
UPDATE customers SET visits = visits + 1 WHERE id = 2;            -- not kept: none
UPDATE customers SET email = 'bob@x' WHERE id = 2;                -- type 1: every version
BEGIN;                                                            -- back as it was: none
UPDATE customers SET segment = 'x' WHERE id = 3;
UPDATE customers SET segment = NULL WHERE id = 3;
COMMIT;
BEGIN;                                                            -- one version: the last state
UPDATE customers SET name = 'cyd' WHERE id = 3;
UPDATE customers SET name = 'cyril' WHERE id = 3;
COMMIT;
DELETE FROM customers WHERE id = 2;                               -- closed
INSERT INTO customers (id, name, segment, email) VALUES (2, 'bob', 'bronze', 'b2@x'); -- version 2, after a gap
UPDATE customers SET id = 10 WHERE id = 1;                        -- key 1 ends, key 10 begins
BEGIN;                                                            -- deleted and inserted again: one state
DELETE FROM customers WHERE id = 3;
INSERT INTO customers (id, name, segment, notes, email)
    VALUES (3, 'cyril', 'gold', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i), 'c@x');
COMMIT;
UPDATE customers SET segment = 'silver' WHERE id = 3;             -- notes unchanged, out of line
INSERT INTO customers (id, name, email) VALUES (4, 'dee', 'd@x');
SELECT flowstate.wait_for(timeout => '30s');

SELECT id, name, segment, md5(notes) = (SELECT md5(string_agg(md5(i::text), '')) FROM generate_series(1, 300) i) AS notes_whole,
       email, version, is_current, valid_to = 'infinity' AS open
  FROM customers_history ORDER BY id, version;
-- the versions of a key follow each other without overlap, each closed
-- where the next begins unless the key was deleted in between (key 2)
SELECT a.id, a.version, b.version AS next, a.valid_to = b.valid_from AS contiguous,
       a.valid_from < a.valid_to AS lasted
  FROM customers_history a LEFT JOIN customers_history b ON b.id = a.id AND b.version = a.version + 1
 ORDER BY 1, 2;
-- a current version began when the transaction that made the row as it is
-- committed (track_commit_timestamp); key 2's first version ended when its
-- DELETE committed
SELECT h.id, h.valid_from = pg_xact_commit_timestamp(c.xmin) AS from_commit
  FROM customers_history h JOIN customers c USING (id)
 WHERE h.is_current ORDER BY 1;
-- the current view and as_of
SELECT id, name, segment, email, version FROM customers_history_current ORDER BY id;
SELECT valid_from AS platinum_from FROM customers_history WHERE id = 1 AND version = 2 \gset
SELECT id, segment FROM flowstate.as_of(NULL::customers_history, :'platinum_from'::timestamptz - interval '1 microsecond')
 ORDER BY id;
SELECT id, segment FROM flowstate.as_of(NULL::customers_history, :'platinum_from') ORDER BY id;
SELECT id, segment FROM flowstate.as_of(NULL::customers_history, now()) ORDER BY id;
SELECT status, versions_written, last_change = (SELECT max(valid_from) FROM customers_history) AS last_change,
       lag_bytes >= 0 AS lag, last_error
  FROM flowstate.histories;

--
-- 4. Delete and TRUNCATE policies: a tombstone version, deletes ignored;
-- TRUNCATE closes every current version, or is ignored
--
CREATE TABLE items (sku text PRIMARY KEY, price numeric);
ALTER TABLE items REPLICA IDENTITY FULL;
SELECT flowstate.create_history('items_tombstones', 'items', '{sku}', on_delete => 'tombstone');
SELECT flowstate.create_history('items_kept', 'items', '{sku}', on_delete => 'ignore', on_truncate => 'ignore');
-- a continuous view over a history: it follows the versions the decoder writes
ALTER TABLE items_tombstones REPLICA IDENTITY FULL;
SELECT flowstate.create_view('item_versions', $$
    SELECT sku, count(*) AS versions, max(version) AS last, sum(price) AS prices,
           count(*) AS n, bool_or(is_current) AS has_current
      FROM items_tombstones GROUP BY sku $$);
SELECT flowstate.wait_for(timeout => '30s');
INSERT INTO items VALUES ('a', 1), ('b', 2), ('c', 3);
UPDATE items SET price = 1.50 WHERE sku = 'a';
UPDATE items SET price = 1.5 WHERE sku = 'a';   -- equal as numerics: no version
DELETE FROM items WHERE sku = 'b';
INSERT INTO items VALUES ('b', 2);              -- after the tombstone: a version
DELETE FROM items WHERE sku = 'c';
TRUNCATE items;
INSERT INTO items VALUES ('a', 1.5);
SELECT flowstate.wait_for(timeout => '30s');
SELECT sku, price, version, is_deleted, is_current FROM items_tombstones ORDER BY sku, version;
SELECT sku, price FROM items_tombstones_current ORDER BY sku;
SELECT sku, price FROM flowstate.as_of(NULL::items_tombstones, now()) ORDER BY sku;
SELECT sku, price, version, is_current FROM items_kept ORDER BY sku, version;
-- the view equals its query over the history (wait_for waited for both)
SELECT * FROM item_versions ORDER BY sku;
SELECT count(*) AS differences FROM (
    (SELECT * FROM item_versions
     EXCEPT SELECT sku, count(*), max(version), sum(price), count(*), bool_or(is_current)
              FROM items_tombstones GROUP BY sku)
    UNION ALL
    (SELECT sku, count(*), max(version), sum(price), count(*), bool_or(is_current)
       FROM items_tombstones GROUP BY sku
     EXCEPT SELECT * FROM item_versions)) d;
SELECT flowstate.drop_view('item_versions');

--
-- 5. Who may see what: the history is its owner's table; a role that
-- cannot read a column or a row of the source cannot keep its history
--
CREATE ROLE hist_owner LOGIN;
CREATE ROLE hist_other LOGIN;
CREATE SCHEMA hist AUTHORIZATION hist_owner;
CREATE SCHEMA hist_other AUTHORIZATION hist_other;
GRANT USAGE ON SCHEMA hist TO hist_other;
CREATE TABLE accounts (id int PRIMARY KEY, holder text, pin text);
ALTER TABLE accounts REPLICA IDENTITY FULL;
INSERT INTO accounts VALUES (1, 'ann', '1234');
GRANT SELECT (id, holder) ON accounts TO hist_owner;
SET ROLE hist_owner;
SELECT flowstate.create_history('hist.accounts_all', 'accounts', '{id}');
SELECT flowstate.create_history('hist.accounts_history', 'accounts', '{id}', tracked => '{holder}');
RESET ROLE;
SELECT flowstate.wait_for(timeout => '30s');
SELECT id, holder, version FROM hist.accounts_history;
SET ROLE hist_other;
SELECT id, holder FROM hist.accounts_history;
SELECT flowstate.drop_history('hist.accounts_history');
-- registering a table of one's own as the history of a source one cannot read
CREATE TABLE hist_other.steal (id int, pin text);
SELECT flowstate.register_history('hist_other.steal', 'accounts', '{id}', '{pin}', '{}', 'close', 'close', NULL, NULL, NULL);
-- or the table of another role
SELECT flowstate.register_history('hist.accounts_history', 'accounts', '{id}', '{holder}', '{}', 'close', 'close', NULL, NULL, NULL);
RESET ROLE;
-- row-level security applying to the owner
CREATE TABLE guarded (id int PRIMARY KEY, v int);
ALTER TABLE guarded REPLICA IDENTITY FULL;
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON guarded TO hist_owner;
SET ROLE hist_owner;
SELECT flowstate.create_history('hist.guarded_history', 'guarded', '{id}');
RESET ROLE;
-- the owner loses the right to read the source: the history stops, failed
REVOKE SELECT (holder) ON accounts FROM hist_owner;
UPDATE accounts SET holder = 'anne' WHERE id = 1;
SELECT flowstate.wait_for(timeout => '30s');
SELECT h.history, h.status, h.last_error FROM flowstate.histories h
 WHERE h.history = 'hist.accounts_history'::regclass;
SELECT id, holder, version FROM hist.accounts_history;

--
-- 6. A source that stops logging whole old rows fails its histories
--
ALTER TABLE items REPLICA IDENTITY DEFAULT;
UPDATE items SET price = 2 WHERE sku = 'a';
SELECT flowstate.wait_for(timeout => '30s');
SELECT history, status, last_error FROM flowstate.histories
 WHERE source = 'items'::regclass ORDER BY history::text;

--
-- 7. drop_history: the table, its current view and the catalog entry go
--
SET ROLE hist_owner;
SELECT flowstate.drop_history('hist.accounts_history');
RESET ROLE;
SELECT flowstate.drop_history('items_tombstones');
SELECT flowstate.drop_history('items_kept');
SELECT flowstate.drop_history('customers_history');
SELECT to_regclass('customers_history') AS history, to_regclass('customers_history_current') AS current_view,
       (SELECT count(*) FROM flowstate.history) AS histories;
-- DROP TABLE of a history's table or of its source takes its catalog
-- entry along; a history whose source goes keeps its table
CREATE TABLE things (id int PRIMARY KEY, v int);
ALTER TABLE things REPLICA IDENTITY FULL;
SELECT flowstate.create_history('things_a', 'things', '{id}');
SELECT flowstate.create_history('things_b', 'things', '{id}');
DROP TABLE things_a CASCADE;
SELECT history FROM flowstate.history ORDER BY 1;
DROP TABLE things;
SELECT count(*) AS histories, to_regclass('things_b') AS kept FROM flowstate.history;
DROP TABLE things_b CASCADE;
-- no history left: nothing to wait for
SELECT flowstate.wait_for(timeout => '30s');

DROP SCHEMA hist, hist_other CASCADE;
DROP TABLE customers, plain, parted, scratch, items, accounts, guarded CASCADE;
DROP ROLE hist_owner, hist_other;
