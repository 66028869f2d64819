-- flowstate 0.9.0 -> 0.10.0

\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.10.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- Histories of Kafka streams.  Each message is the whole state of its key
-- (an upsert); a message without value, or one whose delete column is
-- true, deletes its key.  Versions are ordered by a sequencing column of
-- the message (by default the message's timestamp), not by arrival: a
-- message that comes late is spliced into the key's history.  The
-- history keeps the messages it was built from in <name>_changes, from
-- which a key's versions are built again when a message comes out of
-- order.  The worker of the stream writes both in the transaction that
-- records the offsets it has reached (flowstate.history_offsets).
-------------------------------------------------------------------------------
LOCK TABLE flowstate.view IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE flowstate.history
    ADD COLUMN delete_column name,
    ADD COLUMN changes regclass;

COMMENT ON COLUMN flowstate.history.sequence_column IS
'a stream''s history: the timestamptz column of the message that orders its versions (NULL: the message''s timestamp)';
COMMENT ON COLUMN flowstate.history.delete_column IS
'a stream''s history: the boolean column of the message that marks a delete (NULL: only messages without value delete)';
COMMENT ON COLUMN flowstate.history.changes IS
'a stream''s history: the table of the messages it was built from, by key and sequence';

CREATE TABLE flowstate.history_offsets (
    history_id  integer NOT NULL REFERENCES flowstate.history ON DELETE CASCADE,
    "partition" integer NOT NULL CHECK ("partition" >= 0),
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (history_id, "partition")
);

COMMENT ON TABLE flowstate.history_offsets IS
'the next offset of each partition that each history of a Kafka stream consumes, as of its table';

SELECT pg_catalog.pg_extension_config_dump('flowstate.history_offsets', '');
REVOKE ALL ON flowstate.history_offsets FROM PUBLIC;

DROP FUNCTION flowstate.register_history(regclass, regclass, name[], name[], name[], text, text);

CREATE FUNCTION flowstate.register_history(history regclass, source regclass, key name[],
                                           tracked name[], type1 name[], on_delete text,
                                           on_truncate text, sequence_column name,
                                           delete_column name, changes regclass)
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'flowstate_register_history';

COMMENT ON FUNCTION flowstate.register_history(regclass, regclass, name[], name[], name[], text, text, name, name, regclass) IS
'enter a history made by flowstate.create_history() in the catalog (the caller owns the history table and reads the source)';

-------------------------------------------------------------------------------
-- flowstate.create_history(name, source, key, tracked, type1, on_delete,
-- on_truncate, sequence_column, delete_column)
-------------------------------------------------------------------------------
DROP FUNCTION flowstate.create_history(text, regclass, name[], name[], name[], text, text);

CREATE FUNCTION flowstate.create_history(
    name            text,
    source          regclass,
    key             name[],
    tracked         name[] DEFAULT NULL,
    type1           name[] DEFAULT '{}',
    on_delete       text DEFAULT 'close',
    on_truncate     text DEFAULT 'close',
    sequence_column name DEFAULT NULL,
    delete_column   name DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql
AS $fn$
DECLARE
    rel         pg_catalog.pg_class;
    stream      boolean;
    kind        text;
    workers     int;
    nsp         name;
    relname     name;
    hist        regclass;
    changes     regclass;
    col         name;
    cols        text := '';
    keylist     text;
    all_cols    name[];
    current_cols text;
BEGIN
    IF name IS NULL OR source IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'name, source and key of a history must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Call flowstate.create_history(''name'', ''table'', ARRAY[''key column'']).';
    END IF;
    SELECT * INTO rel FROM pg_class WHERE oid = source;
    stream := rel.relkind = 'f' AND EXISTS (
        SELECT 1 FROM pg_foreign_table ft
          JOIN pg_foreign_server s ON s.oid = ft.ftserver
          JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
         WHERE ft.ftrelid = source AND w.fdwname = 'flowstate_kafka');
    kind := CASE WHEN stream THEN 'stream' ELSE 'table' END;
    IF rel.relkind = 'p' THEN
        RAISE EXCEPTION 'histories of partitioned tables are not supported yet'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Keep a history of each partition.';
    ELSIF rel.relkind <> 'r' AND NOT stream THEN
        RAISE EXCEPTION '"%" is neither a table nor a stream', source
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'The source of a history is an ordinary table or a foreign table of flowstate_kafka.';
    END IF;
    IF stream THEN
        -- one worker sees every partition, hence every message of a key
        SELECT coalesce((SELECT option_value::int
                           FROM pg_options_to_table(ft.ftoptions)
                          WHERE option_name = 'workers'), 1)
          INTO workers FROM pg_foreign_table ft WHERE ft.ftrelid = source;
        IF workers > 1 THEN
            RAISE EXCEPTION 'stream "%" is consumed by % workers: a history needs one', source, workers
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'A history is written by the worker that consumes every partition of the stream.',
                      HINT = format('Run ALTER FOREIGN TABLE %s OPTIONS (SET workers ''1''), or keep the history of a table the stream is written into.', source);
        END IF;
        IF on_truncate IS DISTINCT FROM 'close' THEN
            RAISE EXCEPTION 'a stream is never truncated: on_truncate does not apply to history "%"', name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave on_truncate out for a stream.';
        END IF;
    ELSE
        IF sequence_column IS NOT NULL OR delete_column IS NOT NULL THEN
            RAISE EXCEPTION 'the history of a table follows its commits: it takes no % column',
                            CASE WHEN sequence_column IS NOT NULL THEN 'sequence' ELSE 'delete' END
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'The versions of a table''s keys begin at the commit times of their changes; a DELETE deletes.',
                      HINT = 'Leave sequence_column and delete_column out; they are for streams.';
        END IF;
        IF rel.relpersistence <> 'p' THEN
            RAISE EXCEPTION 'table "%" is not logged: its changes cannot be decoded', source
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('Run ALTER TABLE %s SET LOGGED.', source);
        END IF;
        IF rel.relreplident <> 'f' THEN
            RAISE EXCEPTION 'table "%" must have REPLICA IDENTITY FULL to feed a history', source
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'A history needs the whole old row of each change, unchanged TOASTed values included.',
                      HINT = format('Run ALTER TABLE %s REPLICA IDENTITY FULL.', source);
        END IF;
        IF pg_catalog.current_setting('wal_level') <> 'logical' THEN
            RAISE EXCEPTION 'histories need wal_level = logical'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Set wal_level = logical in postgresql.conf and restart the server.';
        END IF;
    END IF;

    -- the columns: known, not twice, and readable by the caller
    all_cols := key || coalesce(tracked, '{}') || coalesce(type1, '{}');
    FOREACH col IN ARRAY all_cols LOOP
        IF col IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                       WHERE attrelid = source AND attname = col
                                         AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of a history does not exist in % "%"', col, kind, source
                USING ERRCODE = 'undefined_column',
                      HINT = format('Name columns of the source %s in key, tracked and type1.', kind);
        END IF;
    END LOOP;
    IF (SELECT count(DISTINCT c) FROM unnest(all_cols) c) <> cardinality(all_cols) THEN
        SELECT c INTO col FROM unnest(all_cols) c GROUP BY c HAVING count(*) > 1 LIMIT 1;
        RAISE EXCEPTION 'column "%" is named twice among the key, tracked and type-1 columns', col
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A column is the key, tracked (a change opens a version) or type 1 (a change overwrites every version), only one of these.';
    END IF;

    -- a stream's sequence and delete columns
    IF sequence_column IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute WHERE attrelid = source AND attname = sequence_column
                                         AND attnum > 0 AND NOT attisdropped
                                         AND atttypid = 'timestamptz'::regtype) THEN
        RAISE EXCEPTION 'sequence column "%" is not a timestamptz column of stream "%"', sequence_column, source
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the stream''s column of type timestamp with time zone that tells when each state of a key began, or leave it out (the message''s timestamp).';
    END IF;
    IF delete_column IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute WHERE attrelid = source AND attname = delete_column
                                         AND attnum > 0 AND NOT attisdropped
                                         AND atttypid = 'boolean'::regtype) THEN
        RAISE EXCEPTION 'delete column "%" is not a boolean column of stream "%"', delete_column, source
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the stream''s boolean column that is true in a message deleting its key, or leave it out (messages without value delete).';
    END IF;
    IF sequence_column = ANY (all_cols) OR delete_column = ANY (all_cols) THEN
        RAISE EXCEPTION 'column "%" orders or deletes versions: it is not kept in them',
                        CASE WHEN sequence_column = ANY (all_cols) THEN sequence_column ELSE delete_column END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave the sequence and delete columns out of key, tracked and type1.';
    END IF;

    IF tracked IS NULL THEN
        SELECT coalesce(array_agg(attname ORDER BY attnum), '{}') INTO tracked
          FROM pg_attribute
         WHERE attrelid = source AND attnum > 0 AND NOT attisdropped
           AND attgenerated = ''
           AND attname <> ALL (key || coalesce(type1, '{}'))
           AND attname IS DISTINCT FROM sequence_column
           AND attname IS DISTINCT FROM delete_column;
    END IF;
    type1 := coalesce(type1, '{}');
    all_cols := key || tracked || type1;
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = source AND attname = ANY (all_cols)
                                             AND attgenerated <> '') THEN
        RAISE EXCEPTION 'a history cannot keep generated columns'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Leave generated columns out of tracked and type1: the history can compute them again.';
    END IF;
    SELECT a.attname INTO col
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = source AND a.attname = ANY (all_cols) AND t.typarray = 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a history cannot keep column "%": its type has no array type', col
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'The history writes its versions in arrays: leave the column out, or keep it as a type with arrays.';
    END IF;
    FOREACH col IN ARRAY all_cols || ARRAY[sequence_column, delete_column] LOOP
        CONTINUE WHEN col IS NULL;
        IF NOT has_column_privilege(source, col, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied for column "%" of % "%"', col, kind, source
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A history shows only what its owner may read: grant SELECT on the column, or leave it out.';
        END IF;
    END LOOP;
    IF NOT stream AND row_security_active(source) THEN
        RAISE EXCEPTION 'row-level security of table "%" applies to the owner of history "%"', source, name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Create the history as a role that bypasses the table''s row-level security (its owner, without FORCE ROW LEVEL SECURITY, or a role with BYPASSRLS).';
    END IF;

    -- a table's key is its key: a unique index on exactly its columns (a
    -- stream's key is what its messages say)
    IF NOT stream AND NOT EXISTS (
        SELECT 1 FROM pg_index i
         WHERE i.indrelid = source AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
           AND i.indexprs IS NULL AND i.indnkeyatts = cardinality(key)
           AND (SELECT array_agg(a.attname ORDER BY a.attname)
                  FROM pg_attribute a
                 WHERE a.attrelid = source
                   AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]))
               = (SELECT array_agg(k ORDER BY k) FROM unnest(key) k)) THEN
        RAISE EXCEPTION 'the key (%) of history "%" is not unique in table "%"',
                        array_to_string(key, ', '), name, source
            USING ERRCODE = 'invalid_object_definition',
                  HINT = format('A history follows each key of the table: name the columns of its primary key or of a unique index, or create one (CREATE UNIQUE INDEX ON %s (%s)).',
                                source, array_to_string(key, ', '));
    END IF;
    IF on_delete IS NULL OR on_delete NOT IN ('close', 'tombstone', 'ignore') THEN
        RAISE EXCEPTION 'unknown on_delete policy "%"', on_delete
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'on_delete is close (the current version ends), tombstone (a version marked deleted begins) or ignore.';
    END IF;
    IF on_truncate IS NULL OR on_truncate NOT IN ('close', 'ignore') THEN
        RAISE EXCEPTION 'unknown on_truncate policy "%"', on_truncate
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'on_truncate is close (every current version ends) or ignore.';
    END IF;

    -- the history table, in the schema the name says or the caller's current
    -- one (the function keeps the caller's search_path for that; pg_catalog
    -- comes first in it all the same)
    SELECT (parse_ident(create_history.name))[1:2] INTO all_cols;
    IF cardinality(all_cols) = 2 THEN
        nsp := all_cols[1];
        relname := all_cols[2];
    ELSE
        nsp := current_schema();
        relname := all_cols[1];
        IF nsp IS NULL THEN
            RAISE EXCEPTION 'no schema has been selected to create history "%" in', name
                USING ERRCODE = 'invalid_schema_name',
                      HINT = 'Qualify the name with a schema.';
        END IF;
    END IF;

    SELECT string_agg(format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                             CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                                  THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END,
                             CASE WHEN o.n <= cardinality(key) THEN ' NOT NULL' ELSE '' END),
                      ', ' ORDER BY o.n)
      INTO cols
      FROM unnest(key || tracked || type1) WITH ORDINALITY AS o(c, n)
      JOIN pg_attribute a ON a.attrelid = source AND a.attname = o.c
      JOIN pg_type t ON t.oid = a.atttypid;
    SELECT string_agg(format('%I', k), ', ') INTO keylist FROM unnest(key) k;

    EXECUTE format('CREATE TABLE %I.%I (%s, valid_from timestamptz NOT NULL, '
                   'valid_to timestamptz NOT NULL DEFAULT ''infinity'', '
                   'is_current boolean NOT NULL DEFAULT true, version integer NOT NULL%s, '
                   'PRIMARY KEY (%s, version), CHECK (valid_from <= valid_to))',
                   nsp, relname, cols,
                   CASE WHEN on_delete = 'tombstone' THEN ', is_deleted boolean NOT NULL DEFAULT false' ELSE '' END,
                   keylist);
    hist := format('%I.%I', nsp, relname)::regclass;
    EXECUTE format('CREATE UNIQUE INDEX %I ON %s (%s) WHERE is_current',
                   left(relname, 51) || '_current_key', hist, keylist);
    SELECT string_agg(format('%I', c), ', ') INTO current_cols FROM unnest(key || tracked || type1) c;
    EXECUTE format('CREATE VIEW %I.%I AS SELECT %s, valid_from, version FROM %s WHERE is_current%s',
                   nsp, left(relname, 55) || '_current', current_cols, hist,
                   CASE WHEN on_delete = 'tombstone' THEN ' AND NOT is_deleted' ELSE '' END);
    EXECUTE format('COMMENT ON TABLE %s IS %L', hist,
                   format('SCD type-2 history of %s, kept by flowstate', source));

    -- a stream's: the messages the versions are built from
    IF stream THEN
        EXECUTE format('CREATE TABLE %I.%I (%s, changed_at timestamptz NOT NULL, '
                       'is_delete boolean NOT NULL, '
                       'arrival bigint GENERATED ALWAYS AS IDENTITY, '
                       'PRIMARY KEY (%s, changed_at, arrival))',
                       nsp, left(relname, 55) || '_changes', cols, keylist);
        changes := format('%I.%I', nsp, left(relname, 55) || '_changes')::regclass;
        EXECUTE format('COMMENT ON TABLE %s IS %L', changes,
                       format('the messages of %s that history %s was built from, kept by flowstate', source, hist));
    END IF;

    -- the manager starts the worker of the source, which backfills the
    -- history of a table
    PERFORM flowstate.register_history(hist, source, key, tracked, type1, on_delete, on_truncate,
                                       sequence_column, delete_column, changes);
    RETURN hist;
END
$fn$;

COMMENT ON FUNCTION flowstate.create_history(text, regclass, name[], name[], name[], text, text, name, name) IS
'create an SCD type-2 history of a table or a Kafka stream: one row per version of each key, kept from the source''s changes';

-------------------------------------------------------------------------------
-- flowstate.drop_history(name): a stream's changes table goes too
-------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION flowstate.drop_history(name regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    h flowstate.history;
BEGIN
    SELECT * INTO h FROM flowstate.history WHERE history = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION '"%" is not a history', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT history FROM flowstate.history.';
    END IF;
    IF NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = name), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of history %', name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop the history as its owner.';
    END IF;
    PERFORM flowstate.unregister_history(name);
    EXECUTE format('DROP VIEW IF EXISTS %I.%I', h.history_schema, left(h.history_name, 55) || '_current');
    IF h.changes IS NOT NULL THEN
        EXECUTE format('DROP TABLE IF EXISTS %s', h.changes);
    END IF;
    EXECUTE format('DROP TABLE %s', name);
END
$fn$;

-------------------------------------------------------------------------------
-- flowstate.histories: a stream's history shows the messages it has not
-- consumed yet (lag_messages) rather than WAL
-------------------------------------------------------------------------------
CREATE OR REPLACE VIEW flowstate.histories AS
SELECT h.history, h.source, h.status, h.key_columns, h.tracked_columns, h.type1_columns,
       h.delete_policy, h.truncate_policy, h.started_at, h.versions_written, h.last_change,
       CASE WHEN NOT pg_catalog.pg_is_in_recovery() AND h.changes IS NULL THEN
           (SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.durable_lsn)
              FROM flowstate.sources s WHERE s.kind = 'logical decoding')
       END AS lag_bytes,
       h.last_error,
       h.sequence_column, h.delete_column, h.changes,
       CASE WHEN h.changes IS NOT NULL THEN
           (SELECT s.lag_messages FROM flowstate.sources s, pg_catalog.pg_class c
             WHERE c.oid = h.source AND s.kind = 'kafka'
               AND s.source = pg_catalog.quote_ident(c.relname) || ' (worker 0)')
       END AS lag_messages
  FROM flowstate.history h;
