-- Joins of a Kafka stream to a dimension table (a lookup join on its key,
-- a temporal join to a history): the shapes a continuous view accepts,
-- and the wrong ones, each refused with an errcode, a message and a hint.
-- (No broker is needed: nothing is consumed here; test/t/032_stream_joins.pl
-- consumes.)
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE SERVER kj FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers 'localhost:9');
CREATE FOREIGN TABLE public.sales (ts timestamptz, cid int, sku text, amount numeric)
    SERVER kj OPTIONS (topic 'sales', format 'json');
CREATE FOREIGN TABLE public.refunds (ts timestamptz, cid int)
    SERVER kj OPTIONS (topic 'refunds', format 'json');
CREATE TABLE public.clients (id int PRIMARY KEY, name text, segment text, grp int, code bigint UNIQUE);
CREATE INDEX ON public.clients (grp);
CREATE TABLE public.clients2 (cid int PRIMARY KEY, segment text);
CREATE TABLE public.tiers (id int PRIMARY KEY, tier text);
ALTER TABLE public.tiers REPLICA IDENTITY FULL;
SELECT flowstate.create_history('public.tier_history', 'public.tiers', key => ARRAY['id']) IS NOT NULL AS created;
CREATE TABLE public.facts (id int PRIMARY KEY, cid int, amount numeric, ts timestamptz);
CREATE TABLE public.parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TEMP TABLE temp_dim (id int PRIMARY KEY, segment text);

-- accepted: a lookup join, on the key either way round and on another
-- unique column through a cast; a LEFT JOIN with more conditions in ON;
-- a temporal join to a history
SELECT flowstate.create_view('public.sales_by_segment', $$
    SELECT c.segment, count(*) AS n, sum(s.amount) AS total
      FROM sales s JOIN clients c ON c.id = s.cid GROUP BY c.segment $$) IS NOT NULL AS created;
SELECT flowstate.create_view('public.sales_by_code', $$
    SELECT c.name, count(*) AS n FROM clients c JOIN sales s ON s.cid::bigint = c.code GROUP BY 1 $$) IS NOT NULL AS created;
SELECT flowstate.create_view('public.sales_left', $$
    SELECT flowstate.tumble(s.ts, '1 hour') AS hour, c.segment, count(*) AS n, count(c.id) AS matched
      FROM sales s LEFT JOIN clients c ON s.cid = c.id AND c.segment <> 'closed'
     WHERE s.amount > 0 GROUP BY 1, 2 $$) IS NOT NULL AS created;
SELECT flowstate.create_view('public.sales_by_tier', $$
    SELECT h.tier, count(*) AS n
      FROM sales s JOIN tier_history h ON h.id = s.cid AND h.valid_from <= s.ts AND s.ts < h.valid_to
     GROUP BY h.tier $$) IS NOT NULL AS created;
SELECT flowstate.create_view('public.sales_by_tier2', $$
    SELECT h.tier, count(*) AS n
      FROM sales s JOIN tier_history h ON s.ts >= h.valid_from AND h.valid_to > s.ts AND s.cid = h.id
     GROUP BY h.tier $$) IS NOT NULL AS created;
-- not yet: distinct counts and percentiles over a join; hopping windows over one
SELECT public.try($$SELECT flowstate.create_view('public.sales_distinct', $q$
    SELECT c.segment, count(DISTINCT s.sku) AS skus, percentile_disc(0.5) WITHIN GROUP (ORDER BY s.amount) AS median
      FROM sales s JOIN clients c ON c.id = s.cid GROUP BY c.segment $q$)$$);
SELECT public.try($$SELECT flowstate.create_view('public.sales_hop', $q$
    SELECT w.window_start, c.segment, count(*) AS n
      FROM sales s JOIN clients c ON c.id = s.cid, LATERAL flowstate.hop(s.ts, '1 hour', '15 minutes') w
     GROUP BY 1, 2 $q$)$$);
SELECT view FROM flowstate.views WHERE view::text LIKE 'sales%' ORDER BY 1;
-- the definitions keep the dimensions: dropping one is refused
SELECT public.try($$DROP TABLE public.clients$$);
SELECT public.try($$ALTER TABLE public.clients DROP COLUMN segment$$);

-- refused
-- a column without an index, a non-unique index, a constant
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.name = s.sku')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.grp = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.id = 5')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.id > s.cid')$$);
-- a history without the range of its versions, or with half of it
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN tier_history h ON h.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN tier_history h ON h.id = s.cid AND h.valid_from <= s.ts')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN tier_history h ON h.id = s.cid AND h.valid_from <= s.ts AND now() < h.valid_to')$$);
-- a table source: its dimension must be a user catalog table with
-- REPLICA IDENTITY FULL, its join column indexed, of the key's type (its
-- changes are followed in test/sql/joins_tables.sql and
-- test/t/033_table_joins.pl), a history too (test/sql/joins_temporal.sql)
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM facts f JOIN clients c ON c.id = f.cid')$$);
ALTER TABLE public.clients SET (user_catalog_table = true);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM facts f JOIN clients c ON c.id = f.cid')$$);
ALTER TABLE public.clients REPLICA IDENTITY FULL;
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM facts f JOIN clients c ON c.id = f.cid')$$);
CREATE INDEX ON public.facts (cid);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM facts f JOIN clients c ON c.code = f.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM facts f JOIN clients c ON c.id = f.cid + 1')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM facts f JOIN tier_history h ON h.id = f.cid AND h.valid_from <= f.ts AND f.ts < h.valid_to')$$);
ALTER TABLE public.facts REPLICA IDENTITY FULL;
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT c.segment, count(*) AS n, sum(f.amount) AS total FROM facts f JOIN clients c ON c.id = f.cid GROUP BY 1')$$) AS accepted;
SELECT flowstate.drop_view('public.x');
ALTER TABLE public.clients RESET (user_catalog_table);
ALTER TABLE public.clients REPLICA IDENTITY DEFAULT;
-- two streams, the stream on the nullable side
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN refunds r ON r.cid = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM clients c LEFT JOIN sales s ON c.id = s.cid')$$);
-- other join shapes
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s RIGHT JOIN clients c ON c.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s FULL JOIN clients c ON c.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s, clients c WHERE c.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales JOIN clients2 USING (cid)')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.id = s.cid JOIN tiers t ON t.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN (SELECT * FROM clients) c ON c.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.id = s.cid + (random() * 0)::int')$$);
-- an index in another collation than the join's; the whole row of the
-- dimension; a parent of inheritance children; TABLESAMPLE
CREATE TABLE public.named (name text NOT NULL, segment text);
CREATE UNIQUE INDEX ON public.named (name COLLATE "C");
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN named n ON n.name = s.sku')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN named n ON n.name = s.sku COLLATE "C"')$$) AS accepted;
SELECT flowstate.drop_view('public.x');
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(c) FROM sales s LEFT JOIN clients c ON c.id = s.cid')$$);
CREATE TABLE public.clients_child () INHERITS (public.clients);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN ONLY clients c ON c.id = s.cid')$$) AS accepted;
SELECT flowstate.drop_view('public.x');
DROP TABLE public.clients_child;
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c TABLESAMPLE system (10) ON c.id = s.cid')$$);
-- the equality of a column without an index beside the key's: the key joins
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.name = s.sku AND c.id = s.cid')$$) AS accepted;
SELECT flowstate.drop_view('public.x');
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.grp = s.cid AND c.id = s.cid')$$) AS accepted;
SELECT flowstate.drop_view('public.x');

-- dimensions the worker cannot read
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN parted p ON p.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN temp_dim t ON t.id = s.cid')$$);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN pg_class c ON c.oid = s.cid::oid')$$);

-- row-level security of the dimension that applies to the view's owner
CREATE ROLE flowstate_joiner;
GRANT USAGE ON FOREIGN SERVER kj TO flowstate_joiner;
GRANT SELECT ON public.sales TO flowstate_joiner;
GRANT CREATE ON SCHEMA public TO flowstate_joiner;
CREATE TABLE public.secret_clients (id int PRIMARY KEY, segment text);
ALTER TABLE public.secret_clients OWNER TO flowstate_joiner;
ALTER TABLE public.secret_clients ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
SET ROLE flowstate_joiner;
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN secret_clients c ON c.id = s.cid')$$);
-- a dimension the caller may not read
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT count(*) FROM sales s JOIN clients c ON c.id = s.cid')$$);
RESET ROLE;

SELECT flowstate.drop_view('public.sales_by_segment');
SELECT flowstate.drop_view('public.sales_by_code');
SELECT flowstate.drop_view('public.sales_left');
SELECT flowstate.drop_view('public.sales_by_tier');
SELECT flowstate.drop_view('public.sales_by_tier2');
DROP TABLE public.secret_clients;
REVOKE ALL ON SCHEMA public FROM flowstate_joiner;
DROP OWNED BY flowstate_joiner;
DROP ROLE flowstate_joiner;
SELECT flowstate.drop_history('public.tier_history');
DROP TABLE public.clients, public.clients2, public.tiers, public.facts, public.parted, public.named;
DROP FOREIGN TABLE public.sales, public.refunds;
DROP SERVER kj;
