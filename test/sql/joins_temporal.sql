-- A table joined to a flowstate history by time (a temporal join): each
-- row takes the version of its key valid at the row's time, and the view
-- equals its defining query run as a batch query after every change of
-- either table, including a new version that covers rows already
-- aggregated (test/t/033_table_joins.pl does the same under churn and
-- crashes).
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE TABLE public.members (id int PRIMARY KEY, tier text NOT NULL, city text);
ALTER TABLE public.members REPLICA IDENTITY FULL;
INSERT INTO public.members VALUES (1, 'gold', 'oslo'), (2, 'silver', 'rome'), (3, 'bronze', 'oslo');
SELECT flowstate.create_history('public.member_history', 'public.members', '{id}') IS NOT NULL AS created;
SELECT flowstate.wait_for(timeout => '30s');

-- purchases long ago (before the history: they join no version), now, and
-- in the future (they join each key's latest version, whatever comes)
CREATE TABLE public.purchases (id int PRIMARY KEY, member int, at timestamptz NOT NULL, amount numeric NOT NULL);
ALTER TABLE public.purchases REPLICA IDENTITY FULL;
CREATE INDEX ON public.purchases (member);
INSERT INTO public.purchases
SELECT i, 1 + i % 4,
       CASE i % 3 WHEN 0 THEN '2000-01-01'::timestamptz WHEN 1 THEN clock_timestamp()
                  ELSE '2100-01-01'::timestamptz + i * interval '1 hour' END,
       i
  FROM generate_series(1, 60) i;

-- the history must be one a view over a table can read in the past
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT h.tier, count(*) FROM purchases p JOIN member_history h ON h.id = p.member AND h.valid_from <= p.at AND p.at < h.valid_to GROUP BY 1')$$);
ALTER TABLE public.member_history SET (user_catalog_table = true);
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT h.tier, count(*) FROM purchases p JOIN member_history h ON h.id = p.member AND h.valid_from <= p.at AND p.at < h.valid_to GROUP BY 1')$$);
ALTER TABLE public.member_history REPLICA IDENTITY FULL;
-- the range is still required
SELECT public.try($$SELECT flowstate.create_view('public.x', 'SELECT h.tier, count(*) FROM purchases p JOIN member_history h ON h.id = p.member GROUP BY 1')$$);

SELECT flowstate.create_view('public.spend_by_tier', $$
    SELECT h.tier, count(*) AS n, sum(p.amount) AS total, max(p.amount) AS top
      FROM purchases p JOIN member_history h
        ON h.id = p.member AND h.valid_from <= p.at AND p.at < h.valid_to
     GROUP BY h.tier $$) IS NOT NULL AS created;
SELECT flowstate.create_view('public.spend_by_city', $$
    SELECT h.city, count(*) AS n, min(p.amount) AS low, count(h.version) AS matched
      FROM purchases p LEFT JOIN member_history h
        ON p.member = h.id AND p.at >= h.valid_from AND h.valid_to > p.at AND h.city IS NOT NULL
     GROUP BY h.city $$) IS NOT NULL AS created;
SELECT flowstate.create_view('public.spend_by_day', $$
    SELECT h.tier, flowstate.tumble(p.at, '1 day') AS day, count(*) AS n, sum(p.amount) AS total
      FROM purchases p JOIN member_history h
        ON h.id = p.member AND h.valid_from <= p.at AND p.at < h.valid_to
     WHERE p.at > '2050-01-01'
     GROUP BY 1, 2 $$) IS NOT NULL AS created;

-- each view, then the rows it and its batch query do not share
CREATE FUNCTION pg_temp.check_views() RETURNS TABLE (view text, differences bigint)
LANGUAGE sql AS $$
    WITH q_tier AS (
        SELECT h.tier, count(*) AS n, sum(p.amount) AS total, max(p.amount) AS top
          FROM purchases p JOIN member_history h ON h.id = p.member AND h.valid_from <= p.at AND p.at < h.valid_to
         GROUP BY h.tier),
    q_city AS (
        SELECT h.city, count(*) AS n, min(p.amount) AS low, count(h.version) AS matched
          FROM purchases p LEFT JOIN member_history h
            ON p.member = h.id AND p.at >= h.valid_from AND h.valid_to > p.at AND h.city IS NOT NULL
         GROUP BY h.city),
    q_day AS (
        SELECT h.tier, date_trunc('day', p.at) AS day, count(*) AS n, sum(p.amount) AS total
          FROM purchases p JOIN member_history h ON h.id = p.member AND h.valid_from <= p.at AND p.at < h.valid_to
         WHERE p.at > '2050-01-01' GROUP BY 1, 2)
    SELECT 'spend_by_tier', count(*) FROM (
        (SELECT * FROM public.spend_by_tier EXCEPT ALL SELECT * FROM q_tier)
        UNION ALL (SELECT * FROM q_tier EXCEPT ALL SELECT * FROM public.spend_by_tier)) d
    UNION ALL
    SELECT 'spend_by_city', count(*) FROM (
        (SELECT * FROM public.spend_by_city EXCEPT ALL SELECT * FROM q_city)
        UNION ALL (SELECT * FROM q_city EXCEPT ALL SELECT * FROM public.spend_by_city)) d
    UNION ALL
    SELECT 'spend_by_day', count(*) FROM (
        (SELECT tier, day, n, total FROM public.spend_by_day EXCEPT ALL SELECT * FROM q_day)
        UNION ALL (SELECT * FROM q_day EXCEPT ALL SELECT tier, day, n, total FROM public.spend_by_day)) d
$$;

SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.spend_by_tier ORDER BY 1;
SELECT * FROM public.spend_by_city ORDER BY 1;
SELECT * FROM pg_temp.check_views();

-- a member changes tier: a new version from the change's commit on, which
-- the future purchases (already aggregated) now join
UPDATE public.members SET tier = 'gold' WHERE id = 2;
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.spend_by_tier ORDER BY 1;
SELECT * FROM pg_temp.check_views();

-- purchases made now join the new version; a member goes (its version
-- ends), comes back (a new one), another moves to no city
INSERT INTO public.purchases SELECT i, 1 + i % 4, clock_timestamp(), i FROM generate_series(61, 70) i;
DELETE FROM public.members WHERE id = 3;
INSERT INTO public.members VALUES (4, 'silver', 'lima');
SELECT flowstate.wait_for(timeout => '30s');
INSERT INTO public.members VALUES (3, 'silver', 'rome');
UPDATE public.members SET city = NULL WHERE id = 1;
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.spend_by_tier ORDER BY 1;
SELECT * FROM public.spend_by_city ORDER BY 1;
SELECT * FROM pg_temp.check_views();
SELECT count(*) AS versions, count(*) FILTER (WHERE is_current) AS current FROM public.member_history;

-- both tables in one transaction: purchases change member and time as the
-- member changes tier
BEGIN;
UPDATE public.purchases SET member = 2, at = '2100-06-01' WHERE id IN (3, 6, 9);
UPDATE public.purchases SET amount = amount * 10 WHERE member = 4;
UPDATE public.members SET tier = 'platinum' WHERE id = 4;
DELETE FROM public.purchases WHERE id BETWEEN 40 AND 45;
COMMIT;
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.spend_by_tier ORDER BY 1;
SELECT * FROM pg_temp.check_views();

-- TRUNCATE of the members ends every current version: the future
-- purchases join nothing
TRUNCATE public.members;
SELECT flowstate.wait_for(timeout => '30s');
SELECT * FROM public.spend_by_tier ORDER BY 1;
SELECT * FROM public.spend_by_city ORDER BY 1;
SELECT * FROM pg_temp.check_views();
SELECT view, status, last_error IS NULL AS no_error, recomputed_groups > 0 AS recomputed
  FROM flowstate.views ORDER BY view::text;
-- the history stays one the views can read in the past
SELECT public.try($$ALTER TABLE public.member_history RESET (user_catalog_table)$$);


SELECT flowstate.drop_view('public.spend_by_tier');
SELECT flowstate.drop_view('public.spend_by_city');
SELECT flowstate.drop_view('public.spend_by_day');
SELECT flowstate.drop_history('public.member_history');
DROP TABLE public.purchases, public.members;
