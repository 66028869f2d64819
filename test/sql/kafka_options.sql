-- Kafka streams: the options of the flowstate_kafka wrapper's servers, user
-- mappings, foreign tables and columns are checked when they are written,
-- and credentials are visible only to whom they belong.  (No broker is
-- needed: nothing here is consumed.)
SET client_min_messages = warning;

-- servers: brokers and librdkafka consumer properties
SELECT public.try($$CREATE SERVER k FOREIGN DATA WRAPPER flowstate_kafka$$);
SELECT public.try($$CREATE SERVER k FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '')$$);
SELECT public.try($$CREATE SERVER k FOREIGN DATA WRAPPER flowstate_kafka
    OPTIONS (brokers 'localhost:9', "fetch.wait.maximum" '10')$$);
SELECT public.try($$CREATE SERVER k FOREIGN DATA WRAPPER flowstate_kafka
    OPTIONS (brokers 'localhost:9', "session.timeout.ms" 'soon')$$);
SELECT public.try($$CREATE SERVER k FOREIGN DATA WRAPPER flowstate_kafka
    OPTIONS (brokers 'localhost:9', "group.id" 'mine')$$);
SELECT public.try($$CREATE SERVER k FOREIGN DATA WRAPPER flowstate_kafka
    OPTIONS (brokers 'localhost:9', "enable.auto.commit" 'true')$$);
SELECT public.try($$CREATE SERVER k FOREIGN DATA WRAPPER flowstate_kafka
    OPTIONS (brokers 'localhost:9', "sasl.password" 'in the clear')$$);
SELECT public.try($$CREATE FOREIGN DATA WRAPPER other HANDLER flowstate.kafka_handler
    VALIDATOR flowstate.kafka_validator OPTIONS (debug 'all')$$);
CREATE SERVER k FOREIGN DATA WRAPPER flowstate_kafka
    OPTIONS (brokers 'localhost:9', "client.id" 'flowstate-test', "fetch.wait.max.ms" '50');
SELECT public.try($$ALTER SERVER k OPTIONS (DROP brokers)$$);

-- user mappings: properties, secrets included
CREATE ROLE flowstate_app;
CREATE ROLE flowstate_other;
SELECT public.try($$CREATE USER MAPPING FOR flowstate_other SERVER k OPTIONS ("security.protocol" 'carrier_pigeon')$$);
SELECT public.try($$CREATE USER MAPPING FOR flowstate_other SERVER k OPTIONS ("group.id" 'x')$$);
CREATE USER MAPPING FOR flowstate_app SERVER k
    OPTIONS ("security.protocol" 'sasl_plaintext', "sasl.mechanism" 'PLAIN',
             "sasl.username" 'app', "sasl.password" 's3cret');

-- foreign tables: topic, format, delimiter, start, workers, group_id, idle_timeout
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic '')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', format 'avro')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', format 'csv', delimiter ';;')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', start 'yesterday')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', workers '0')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', workers 'many')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', group_id '')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', idle_timeout '0 seconds')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', idle_timeout '1 month')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', idle_timeout 'soon')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int) SERVER k OPTIONS (topic 't', partitions '8')$$);
-- columns: field or metadata
SELECT public.try($$CREATE FOREIGN TABLE s (v int OPTIONS (path 'a.b')) SERVER k OPTIONS (topic 't')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int OPTIONS (metadata 'headers')) SERVER k OPTIONS (topic 't')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int OPTIONS (field 'v', metadata 'offset')) SERVER k OPTIONS (topic 't')$$);
SELECT public.try($$CREATE FOREIGN TABLE s (v int OPTIONS (field '')) SERVER k OPTIONS (topic 't')$$);

CREATE FOREIGN TABLE public.clicks (
    ts      timestamptz OPTIONS (field 'time') NOT NULL,
    user_id bigint,
    url     text,
    at      timestamptz OPTIONS (metadata 'timestamp'),
    part    int OPTIONS (metadata 'partition'),
    off     bigint OPTIONS (metadata 'offset'))
  SERVER k OPTIONS (topic 'clicks', format 'json', start 'latest', workers '2', idle_timeout '30s');

-- a stream is read through continuous views, not directly
SELECT public.try('SELECT * FROM public.clicks');
EXPLAIN (COSTS OFF) SELECT * FROM public.clicks;

-- a metadata column of the wrong type is refused when a view would read it
CREATE FOREIGN TABLE public.bad_meta (v int, at text OPTIONS (metadata 'timestamp'))
  SERVER k OPTIONS (topic 't');
SELECT public.try($$SELECT flowstate.create_view('public.bm', 'SELECT count(*) FROM public.bad_meta')$$);
CREATE FOREIGN TABLE public.bad_csv (v int OPTIONS (field 'second')) SERVER k OPTIONS (topic 't', format 'csv');
SELECT public.try($$SELECT flowstate.create_view('public.bc', 'SELECT count(*) FROM public.bad_csv')$$);

-- retention, notify and changelog over a stream (their windows are final by
-- the event time every worker judges with), checked as over a table
SELECT flowstate.create_view('public.cr', 'SELECT flowstate.tumble(ts, ''1 minute'') AS minute, count(*) FROM public.clicks GROUP BY 1',
                             allowed_lateness => '0', retention => '1 hour', notify => true, changelog => true);
SELECT to_regclass('public.cr_changelog') IS NOT NULL AS has_changelog;
SELECT flowstate.drop_view('public.cr');
SELECT public.try($$SELECT flowstate.create_view('public.cr', 'SELECT flowstate.tumble(ts, ''1 minute''), count(*) FROM public.clicks GROUP BY 1', allowed_lateness => '0', retention => '1 second')$$);

-- a view over a stream: no backfill, no replica identity needed
SELECT flowstate.create_view('public.clicks_per_minute', $$
    SELECT flowstate.tumble(ts, '1 minute') AS minute, count(*) AS clicks,
           count(DISTINCT user_id) FILTER (WHERE true) AS users
      FROM public.clicks GROUP BY 1 $$);
SELECT flowstate.create_view('public.clicks_per_minute', $$
    SELECT flowstate.tumble(ts, '1 minute') AS minute, count(*) AS clicks, max(off) AS last_offset
      FROM public.clicks GROUP BY 1 $$);
SELECT view, source, window_kind, status FROM flowstate.view WHERE view = 'public.clicks_per_minute'::regclass;
SELECT public.try('DROP FOREIGN TABLE public.clicks');

-- credentials: the mapped role (with USAGE on the server) and superusers see
-- them; other roles do not
GRANT USAGE ON FOREIGN SERVER k TO flowstate_app;
SET ROLE flowstate_other;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'k';
SELECT public.try('SELECT umoptions FROM pg_catalog.pg_user_mapping');
SET ROLE flowstate_app;
SELECT usename, umoptions FROM pg_user_mappings WHERE srvname = 'k';
RESET ROLE;

SELECT flowstate.drop_view('public.clicks_per_minute');
DROP FOREIGN TABLE public.clicks, public.bad_meta, public.bad_csv;
DROP SERVER k CASCADE;
DROP ROLE flowstate_app, flowstate_other;
