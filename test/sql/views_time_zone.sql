-- Time zones.  A continuous view evaluates its expressions in the TimeZone
-- of the session that created it, shown in flowstate.views: date_trunc of a
-- timestamptz, extract, casts to date and timestamp, timestamptz plus an
-- interval and comparisons with dates are accepted, and the view equals its
-- defining query run as a batch query in that zone, whatever the zone of
-- the workers (UTC here) or of the reader.
SET TimeZone = 'America/New_York';
SET datestyle = 'ISO, YMD';

CREATE TABLE public.trips (id serial PRIMARY KEY, ts timestamptz NOT NULL, city text, fare numeric(8, 2));
ALTER TABLE public.trips REPLICA IDENTITY FULL;

-- trips(from, n): n trips an hour apart, from a UTC instant, in two cities
CREATE FUNCTION public.trips(start timestamptz, n int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO public.trips (ts, city, fare)
    SELECT start + i * interval '53 minutes', (ARRAY['nyc', 'sfo'])[1 + i % 2], 5 + (i * 7) % 40
      FROM generate_series(0, n - 1) i
$$;

-- before the views: their backfill reads these; across the change to
-- daylight saving time of 2026-03-08 (02:00 local, 07:00 UTC)
SELECT public.trips('2026-03-07 03:00:00+00', 30);

-- local days, and an extract in WHERE
SELECT flowstate.create_view('public.local_days', $$
    SELECT date_trunc('day', ts) AS day, city, count(*) AS n, sum(fare) AS fares, max(ts) AS last
      FROM public.trips WHERE extract(hour FROM ts) BETWEEN 1 AND 22 GROUP BY 1, 2$$);
-- hours of another zone, named in the call
SELECT flowstate.create_view('public.kolkata_hours', $$
    SELECT date_trunc('hour', ts, 'Asia/Kolkata') AS hour, count(*) AS n, min(fare) AS lo
      FROM public.trips GROUP BY 1$$);
-- dates, timestamps, intervals, comparisons with a date
SELECT flowstate.create_view('public.local_dates', $$
    SELECT ts::date AS d, (ts + interval '1 day')::date AS next_d,
           date_trunc('month', ts::timestamp) AS month, count(*) AS n,
           count(*) FILTER (WHERE ts < date '2026-03-08') AS before_sunday
      FROM public.trips WHERE ts >= date '2026-03-07' GROUP BY 1, 2, 3$$);

SELECT view, time_zone FROM flowstate.views ORDER BY view::text;

-- the reader and the writers in another zone
SET TimeZone = 'UTC';
SELECT public.trips('2026-03-08 01:30:00+00', 40);
UPDATE public.trips SET ts = ts + interval '5 hours' WHERE id % 5 = 0;
DELETE FROM public.trips WHERE fare = (SELECT max(fare) FROM public.trips);
DELETE FROM public.trips WHERE id % 7 = 0;
SELECT flowstate.wait_for();

-- differences(view): rows of the view and of its batch query run in
-- America/New_York that the other lacks
CREATE FUNCTION public.differences(v regclass) RETURNS bigint
LANGUAGE plpgsql SET TimeZone = 'America/New_York' AS $$
DECLARE
    def regclass := (SELECT definition FROM flowstate.view WHERE view = v);
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((TABLE %s EXCEPT ALL TABLE %s) UNION ALL (TABLE %s EXCEPT ALL TABLE %s)) d',
                   v, def, def, v) INTO n;
    RETURN n;
END
$$;
SELECT view, public.differences(view) AS differences FROM flowstate.view ORDER BY view::text;

-- in UTC the batch query gives other days, hours and dates: the views did not
SET TimeZone = 'UTC';
SELECT count(*) > 0 AS utc_differs FROM
    ((TABLE public.local_days) EXCEPT ALL
     (SELECT date_trunc('day', ts) AS day, city, count(*), sum(fare), max(ts)
        FROM public.trips WHERE extract(hour FROM ts) BETWEEN 1 AND 22 GROUP BY 1, 2)) d;

SET TimeZone = 'America/New_York';
SELECT * FROM public.local_days ORDER BY day, city;
SELECT * FROM public.local_dates ORDER BY d, next_d, month;

-- a function that depends on more than the time zone is still refused
SELECT flowstate.create_view('public.refused', $$
    SELECT to_char(ts, 'YYYY-MM') AS m, count(*) FROM public.trips GROUP BY 1$$);
SELECT flowstate.create_view('public.refused', $$
    SELECT city, count(*) FROM public.trips WHERE ts > now() - interval '1 day' GROUP BY 1$$);

SELECT flowstate.drop_view('public.local_days');
SELECT flowstate.drop_view('public.kolkata_hours');
SELECT flowstate.drop_view('public.local_dates');
DROP FUNCTION public.differences(regclass);
DROP FUNCTION public.trips(timestamptz, int);
DROP TABLE public.trips;
RESET TimeZone;
