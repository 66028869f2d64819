-- flowstate 0.8.0 -> 0.9.0

\echo Use "ALTER EXTENSION flowstate UPDATE TO '0.9.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- SCD type-2 histories of tables.  flowstate.create_history() makes an
-- ordinary table with one row per version of each key, which the decoding
-- worker keeps from the table's changes, in the same transaction as the
-- WAL position it has reached (exactly once).
-------------------------------------------------------------------------------
LOCK TABLE flowstate.view IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE flowstate.history
    ADD COLUMN history regclass,
    ADD COLUMN truncate_policy text NOT NULL DEFAULT 'close'
        CHECK (truncate_policy IN ('close', 'ignore')),
    ADD COLUMN status text NOT NULL DEFAULT 'backfilling'
        CHECK (status IN ('backfilling', 'running', 'failed')),
    ADD COLUMN started_at timestamptz,
    ADD COLUMN versions_written bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_change timestamptz,
    ADD COLUMN last_error text;

COMMENT ON COLUMN flowstate.history.history IS
'the history table: one row per version of each key';
COMMENT ON COLUMN flowstate.history.truncate_policy IS
'what a TRUNCATE of the source does: close every current version, or nothing';
COMMENT ON COLUMN flowstate.history.status IS
'backfilling (the rows of the source become version 1), running, or failed (see last_error; the history is no longer kept)';
COMMENT ON COLUMN flowstate.history.started_at IS
'when the backfill read the source: the valid_from of the versions of the rows it held';
COMMENT ON COLUMN flowstate.history.versions_written IS
'versions opened, closed or overwritten since the history was created';
COMMENT ON COLUMN flowstate.history.last_change IS
'the commit time of the latest change of the source written into the history';
COMMENT ON COLUMN flowstate.history.last_error IS
'why the history failed, if it did';

CREATE FUNCTION flowstate.register_history(history regclass, source regclass, key name[],
                                           tracked name[], type1 name[], on_delete text,
                                           on_truncate text)
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'flowstate_register_history';

COMMENT ON FUNCTION flowstate.register_history(regclass, regclass, name[], name[], name[], text, text) IS
'enter a history made by flowstate.create_history() in the catalog (the caller owns the history table and reads the source)';

CREATE FUNCTION flowstate.unregister_history(history regclass)
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'flowstate_unregister_history';

COMMENT ON FUNCTION flowstate.unregister_history(regclass) IS
'remove a history from the catalog (used by flowstate.drop_history())';

-------------------------------------------------------------------------------
-- flowstate.create_history(name, source, key, tracked, type1, on_delete,
-- on_truncate)
-------------------------------------------------------------------------------
CREATE FUNCTION flowstate.create_history(
    name        text,
    source      regclass,
    key         name[],
    tracked     name[] DEFAULT NULL,
    type1       name[] DEFAULT '{}',
    on_delete   text DEFAULT 'close',
    on_truncate text DEFAULT 'close')
RETURNS regclass
LANGUAGE plpgsql
AS $fn$
DECLARE
    rel         pg_catalog.pg_class;
    ident       name[];
    nsp         name;
    relname     name;
    hist        regclass;
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
    IF rel.relkind = 'f' THEN
        RAISE EXCEPTION 'histories of Kafka streams are not supported yet'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Keep the history of a table: write the stream into a table and call flowstate.create_history() on it.';
    ELSIF rel.relkind = 'p' THEN
        RAISE EXCEPTION 'histories of partitioned tables are not supported yet'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Keep a history of each partition.';
    ELSIF rel.relkind <> 'r' THEN
        RAISE EXCEPTION '"%" is not a table', source
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'The source of a history is an ordinary table.';
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

    -- the columns: known, not twice, and readable by the caller
    all_cols := key || coalesce(tracked, '{}') || coalesce(type1, '{}');
    FOREACH col IN ARRAY all_cols LOOP
        IF col IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                       WHERE attrelid = source AND attname = col
                                         AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of a history does not exist in table "%"', col, source
                USING ERRCODE = 'undefined_column',
                      HINT = 'Name columns of the source table in key, tracked and type1.';
        END IF;
    END LOOP;
    IF (SELECT count(DISTINCT c) FROM unnest(all_cols) c) <> cardinality(all_cols) THEN
        SELECT c INTO col FROM unnest(all_cols) c GROUP BY c HAVING count(*) > 1 LIMIT 1;
        RAISE EXCEPTION 'column "%" is named twice among the key, tracked and type-1 columns', col
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A column is the key, tracked (a change opens a version) or type 1 (a change overwrites every version), only one of these.';
    END IF;
    IF tracked IS NULL THEN
        SELECT coalesce(array_agg(attname ORDER BY attnum), '{}') INTO tracked
          FROM pg_attribute
         WHERE attrelid = source AND attnum > 0 AND NOT attisdropped
           AND attgenerated = '' AND attname <> ALL (key || coalesce(type1, '{}'));
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
    FOREACH col IN ARRAY all_cols LOOP
        IF NOT has_column_privilege(source, col, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied for column "%" of table "%"', col, source
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A history shows only what its owner may read: grant SELECT on the column, or leave it out.';
        END IF;
    END LOOP;
    IF row_security_active(source) THEN
        RAISE EXCEPTION 'row-level security of table "%" applies to the owner of history "%"', source, name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Create the history as a role that bypasses the table''s row-level security (its owner, without FORCE ROW LEVEL SECURITY, or a role with BYPASSRLS).';
    END IF;

    -- the key is the key of the table: a unique index on exactly its columns
    IF NOT EXISTS (
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

    -- the manager starts the decoder, which backfills the history
    PERFORM flowstate.register_history(hist, source, key, tracked, type1, on_delete, on_truncate);
    RETURN hist;
END
$fn$;

COMMENT ON FUNCTION flowstate.create_history(text, regclass, name[], name[], name[], text, text) IS
'create an SCD type-2 history of a table: one row per version of each key, kept from the table''s changes';

-------------------------------------------------------------------------------
-- flowstate.drop_history(name)
-------------------------------------------------------------------------------
CREATE FUNCTION flowstate.drop_history(name regclass)
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
    EXECUTE format('DROP TABLE %s', name);
END
$fn$;

COMMENT ON FUNCTION flowstate.drop_history(regclass) IS
'drop a history: its table, its _current view and its entry in flowstate.history';

-------------------------------------------------------------------------------
-- flowstate.as_of(NULL::history, ts): the versions valid at ts
-------------------------------------------------------------------------------
CREATE FUNCTION flowstate.as_of(history anyelement, at timestamptz)
RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    rel regclass := (SELECT typrelid FROM pg_type WHERE oid = pg_typeof(history));
    tombstones boolean;
BEGIN
    SELECT delete_policy = 'tombstone' INTO tombstones FROM flowstate.history h WHERE h.history = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not the row type of a history', pg_typeof(history)
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Call flowstate.as_of(NULL::history_table, timestamp).';
    END IF;
    RETURN QUERY EXECUTE format('SELECT * FROM %s WHERE valid_from <= $1 AND $1 < valid_to%s',
                                rel, CASE WHEN tombstones THEN ' AND NOT is_deleted' ELSE '' END)
        USING at;
END
$fn$;

COMMENT ON FUNCTION flowstate.as_of(anyelement, timestamptz) IS
'the versions of a history valid at an instant: SELECT * FROM flowstate.as_of(NULL::history_table, ts)';

-------------------------------------------------------------------------------
-- flowstate.histories: monitoring
-------------------------------------------------------------------------------
CREATE VIEW flowstate.histories AS
SELECT h.history, h.source, h.status, h.key_columns, h.tracked_columns, h.type1_columns,
       h.delete_policy, h.truncate_policy, h.started_at, h.versions_written, h.last_change,
       CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN
           (SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.durable_lsn)
              FROM flowstate.sources s WHERE s.kind = 'logical decoding')
       END AS lag_bytes,
       h.last_error
  FROM flowstate.history h;

COMMENT ON VIEW flowstate.histories IS
'SCD type-2 histories: status, versions written, the commit time of the latest change written, the WAL not yet in it (lag_bytes), last error';

GRANT SELECT ON flowstate.histories TO PUBLIC;
