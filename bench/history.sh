#!/usr/bin/env bash
# The history benchmark: bash bench/history.sh [rounds]   (or: make bench-history)
#
# On a throwaway cluster, five databases, each with a table of 100,000
# accounts, and pgbench (4 clients) updating the tracked column of a random
# account per transaction, five ways:
#   plain     the table alone (its default replica identity): the baseline;
#   full      the table alone with REPLICA IDENTITY FULL: what logging the
#             whole old row costs the writers, before any decoding;
#   trigger   the usual hand-written SCD type-2: a row trigger that closes
#             the current version and inserts the next, in the writer's
#             transaction;
#   view      the table with REPLICA IDENTITY FULL and a continuous view
#             over it (count and sum per tier % 10), no history: what the
#             decoder costs any source, for comparison;
#   flowstate the table with REPLICA IDENTITY FULL and a history kept by
#             flowstate.create_history, from the WAL.
# Each round runs a leg of 5 s of each way, one after the other, starting
# with a different way each round; after a leg of view or flowstate it waits
# until that database's decoder caught up (history versions written), so
# that no leg pays for the work of the one before.  A way's cost to the
# writers is plain's transactions per second over its own in the same round
# (legs seconds apart: the machine's speed drifts between minutes, far less
# between seconds), and its median over the rounds.  Also printed: the
# decoder's CPU per transaction with the view; for flowstate the versions
# written per second (from the start of the leg until the history caught
# up) and the decoder's CPU per version; and a check that the history holds
# exactly one version per update.  As root it first installs what it needs
# (.ci/setup.sh) and runs the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-9}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-history}
PORT=${FLOWSTATE_BENCH_PORT:-5492}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare
    bench_reexec history.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
bench_initdb <<< "flowstate.flush_interval = 1s"
pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
trap 'pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true' EXIT

ACCOUNTS=100000
LEG_SECONDS=5
CLIENTS=4
WAYS=(plain full trigger view flowstate)
echo "\\set id random(1, $ACCOUNTS)" > update.sql
echo "UPDATE accounts SET tier = tier + 1, balance = balance + 1 WHERE id = :id;" >> update.sql

# each way in its own database, bench_<way>: a database's decoder decodes the changes of
# that database only
for way in "${WAYS[@]}"; do
    q -d postgres -c "CREATE DATABASE bench_$way"
    q -d "bench_$way" -c "CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, tier int NOT NULL,
                                           balance int NOT NULL, email text)" \
      -c "INSERT INTO accounts SELECT i, 'owner ' || i, 0, 0, 'a' || i || '@example.com'
            FROM generate_series(1, $ACCOUNTS) i"
done
for way in full view flowstate; do
    q -d "bench_$way" -c "ALTER TABLE accounts REPLICA IDENTITY FULL"
done

# the usual SCD type-2 trigger, as found in tutorials
q -d bench_trigger <<'SQL'
CREATE TABLE accounts_scd (id int NOT NULL, owner text, tier int, valid_from timestamptz NOT NULL,
                           valid_to timestamptz NOT NULL DEFAULT 'infinity',
                           is_current boolean NOT NULL DEFAULT true, version int NOT NULL,
                           PRIMARY KEY (id, version));
CREATE UNIQUE INDEX ON accounts_scd (id) WHERE is_current;
INSERT INTO accounts_scd SELECT id, owner, tier, now(), 'infinity', true, 1 FROM accounts;
CREATE OR REPLACE FUNCTION accounts_scd() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v int;
BEGIN
    IF (NEW.owner, NEW.tier) IS NOT DISTINCT FROM (OLD.owner, OLD.tier) THEN
        RETURN NULL;
    END IF;
    UPDATE accounts_scd SET valid_to = now(), is_current = false
     WHERE id = OLD.id AND is_current RETURNING version INTO v;
    INSERT INTO accounts_scd VALUES (NEW.id, NEW.owner, NEW.tier, now(), 'infinity', true,
                                     coalesce(v, 0) + 1);
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_scd AFTER UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION accounts_scd();
SQL

q -d bench_view -c "CREATE EXTENSION flowstate" \
  -c "SELECT flowstate.create_view('tiers', 'SELECT tier % 10 AS t, count(*) AS n, sum(balance) AS total
                                            FROM accounts GROUP BY 1')" >/dev/null
q -d bench_flowstate -c "CREATE EXTENSION flowstate" \
  -c "SELECT flowstate.create_history('accounts_history', 'accounts', '{id}',
                                     tracked => '{owner,tier}', type1 => '{email}')" >/dev/null
for way in view flowstate; do
    q -d "bench_$way" -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
done
for way in "${WAYS[@]}"; do
    q -d "bench_$way" -c "VACUUM ANALYZE"
done
q -d postgres -c CHECKPOINT

decoder_of() {
    q -d "$1" -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate decoder' AND datname = '$1'"
}
versions_of() { q -d bench_flowstate -c "SELECT versions_written FROM flowstate.histories"; }

# one leg of a way: "tps cpu versions seconds", the last three for view and
# flowstate only: the decoder's CPU, the history's new versions and the
# seconds from the start of the leg until the decoder caught up
leg() {
    local way=$1 pid cpu0 v0=0 t0 tps
    if [ "$way" != view ] && [ "$way" != flowstate ]; then
        tps=$(pgbench -n -c "$CLIENTS" -j 2 -T "$LEG_SECONDS" -f update.sql "bench_$way" 2>/dev/null |
                  awk '/^tps = / {print $3}')
        echo "$tps 0 0 0"
        return
    fi
    pid=$(decoder_of "bench_$way")
    cpu0=$(cpu_seconds "$pid")
    [ "$way" = flowstate ] && v0=$(versions_of)
    t0=$(now)
    tps=$(pgbench -n -c "$CLIENTS" -j 2 -T "$LEG_SECONDS" -f update.sql "bench_$way" 2>/dev/null |
              awk '/^tps = / {print $3}')
    q -d "bench_$way" -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
    echo "$tps $(echo "$(cpu_seconds "$pid") - $cpu0" | bc -l)" \
         "$([ "$way" = flowstate ] && echo $(( $(versions_of) - v0 )) || echo 0)" \
         "$(elapsed "$t0" "$(now)")"
}

# a leg of each first, not counted: caches warm, the decoders' plans made
for way in "${WAYS[@]}"; do
    leg "$way" >/dev/null
done

printf 'flowstate history benchmark: %s, %s cores, %d rounds of a %d s leg of each way, %d accounts, %d clients\n' \
    "$(q -d postgres -c 'SHOW server_version')" "$(nproc)" "$ROUNDS" "$LEG_SECONDS" "$ACCOUNTS" "$CLIENTS"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    declare -A tps=() cpu=() versions=() secs=()
    first=${WAYS[$(( (r - 1) % ${#WAYS[@]} ))]}
    for ((i = 0; i < ${#WAYS[@]}; i++)); do
        way=${WAYS[$(( (i + r - 1) % ${#WAYS[@]} ))]}
        read -r "tps[$way]" "cpu[$way]" "versions[$way]" "secs[$way]" <<< "$(leg "$way")"
    done
    ratio() { echo "${tps[plain]} / ${tps[$1]}" | bc -l; }
    view_us=$(echo "${cpu[view]} * 1000000 / (${tps[view]} * $LEG_SECONDS)" | bc -l)
    version_us=$(echo "${cpu[flowstate]} * 1000000 / ${versions[flowstate]}" | bc -l)
    rate=$(echo "${versions[flowstate]} / ${secs[flowstate]}" | bc -l)
    printf 'round %d (from %s): writers %5.0f tps plain, %5.0f full (%.2fx), %5.0f trigger (%.2fx), %5.0f view (%.2fx, decoder %.2f us/transaction), %5.0f history (%.2fx); history: %d versions (%.0f per s), decoder %.2f us/version\n' \
        "$r" "$first" "${tps[plain]}" "${tps[full]}" "$(ratio full)" "${tps[trigger]}" "$(ratio trigger)" \
        "${tps[view]}" "$(ratio view)" "$view_us" "${tps[flowstate]}" "$(ratio flowstate)" \
        "${versions[flowstate]}" "$rate" "$version_us"
    echo "$r x ${tps[plain]} ${tps[full]} ${tps[trigger]} ${tps[view]} ${tps[flowstate]}" \
         "$(ratio full) $(ratio trigger) $(ratio view) $(ratio flowstate) $view_us $version_us $rate" >> results.txt
    unset tps cpu versions secs
done

# one version per update: every account's current version is its number of updates + 1
differ=$(q -d bench_flowstate -c "SELECT count(*) FROM accounts a
                                   FULL JOIN (SELECT * FROM accounts_history WHERE is_current) h USING (id)
                             WHERE a.id IS NULL OR h.id IS NULL OR h.version <> a.tier + 1 OR h.tier <> a.tier")

m() { awk -v c="$1" '{print $c}' results.txt | median; }
echo "medians of $ROUNDS rounds (each ratio: plain over the way, in the same round):"
printf '  writers: plain %.0f tps; REPLICA IDENTITY FULL alone %.0f tps (%.2fx plain); trigger %.0f tps (%.2fx plain); view %.0f tps (%.2fx plain); flowstate history %.0f tps (%.2fx plain, target <= 1.10x)\n' \
    "$(m 3)" "$(m 4)" "$(m 8)" "$(m 5)" "$(m 9)" "$(m 6)" "$(m 10)" "$(m 7)" "$(m 11)"
printf '  decoder: %.2f us of CPU per transaction with the view\n' "$(m 12)"
printf '  history: %.0f versions per second written (leg start to caught up), decoder %.2f us of CPU per version\n' \
    "$(m 14)" "$(m 13)"
if [ "$differ" = 0 ]; then
    echo "the history held one version per update of every account"
else
    echo "the history differed from the updates for $differ accounts" >&2
    exit 1
fi
