-- flowstate.tumble(ts, size): the start of the epoch-aligned tumbling window
SET timezone = 'UTC';

SELECT flowstate.tumble('2026-11-25 10:17:42.5+00'::timestamptz, '1 minute') AS minute,
       flowstate.tumble('2026-11-25 10:17:42.5+00'::timestamptz, '15 minutes') AS quarter,
       flowstate.tumble('2026-11-25 10:17:42.5+00'::timestamptz, '1 hour') AS hour,
       flowstate.tumble('2026-11-25 10:17:42.5+00'::timestamptz, '1 day') AS day;

-- windows are aligned to the epoch, not to the session time zone
SET timezone = 'Asia/Kolkata';
SELECT flowstate.tumble('2026-11-25 10:17:42+05:30'::timestamptz, '1 day') AS day_in_utc;
SET timezone = 'UTC';

-- boundaries belong to the window they open; instants before the epoch work
SELECT ts, flowstate.tumble(ts, '10 seconds') AS w
  FROM unnest(ARRAY['2026-11-25 10:00:09.999999+00', '2026-11-25 10:00:10+00',
                    '1969-12-31 23:59:55+00']::timestamptz[]) AS ts
 ORDER BY ts;

-- timestamp without time zone
SELECT flowstate.tumble('2026-11-25 10:17:42'::timestamp, '5 minutes') AS local_window;

-- NULL in, NULL out
SELECT flowstate.tumble(NULL::timestamptz, '1 minute') IS NULL AS null_ts,
       flowstate.tumble(now(), NULL) IS NULL AS null_size;

-- the contract: date_bin with the epoch as origin, and every instant lies in its window
SELECT count(*) AS mismatches
  FROM generate_series('2026-01-01'::timestamptz, '2026-01-03', '7 minutes 13.5 seconds') AS ts,
       unnest(ARRAY['1 second', '1 minute', '90 seconds', '1 hour', '6 hours']::interval[]) AS size
 WHERE flowstate.tumble(ts, size) <> date_bin(size, ts, 'epoch'::timestamptz)
    OR NOT (flowstate.tumble(ts, size) <= ts AND ts < flowstate.tumble(ts, size) + size);

-- a tumbling aggregate written with it runs as an ordinary batch query
CREATE TABLE public.clicks (ts timestamptz, user_id int);
INSERT INTO public.clicks
SELECT '2026-11-25 10:00:00+00'::timestamptz + i * interval '17 seconds', i % 3
  FROM generate_series(0, 19) AS i;
SELECT flowstate.tumble(ts, '1 minute') AS window_start, user_id, count(*)
  FROM public.clicks
 GROUP BY 1, 2
 ORDER BY 1, 2;
DROP TABLE public.clicks;

-- sizes date_bin cannot bin by are refused
SELECT flowstate.tumble(now(), '1 month');
SELECT flowstate.tumble(now(), '0 seconds');
