#!/usr/bin/env bash
# The history benchmark: bash bench/history.sh [rounds]   (or: make bench-history)
#
# On a throwaway cluster, a table of 100,000 accounts, and pgbench (4
# clients, 15 s) updating the tracked column of a random account per
# transaction, three ways:
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
# Prints, per round and as medians: the writers' transactions per second and
# their ratio to plain (the cost to writers), the decoder's CPU per
# transaction with the view, and for flowstate the
# versions written per second (from the start of the load until the history
# caught up with it), the decoder's CPU per version, and a check that the
# history holds exactly one version per update.  As root it first installs
# what it needs (.ci/setup.sh) and runs the server as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-3}}
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
SECONDS_LOAD=15
CLIENTS=4
cat > update.sql <<EOF
\set id random(1, $ACCOUNTS)
UPDATE accounts SET tier = tier + 1, balance = balance + 1 WHERE id = :id;
EOF

q -d postgres -c "CREATE DATABASE flow"
q -d flow -c "CREATE EXTENSION flowstate"

new_table() {
    q -d flow -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS accounts, accounts_scd, accounts_history CASCADE" \
      -c "DO \$\$ BEGIN PERFORM flowstate.drop_history(history) FROM flowstate.history; END \$\$" \
      -c "CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, tier int NOT NULL,
                                 balance int NOT NULL, email text)" \
      -c "INSERT INTO accounts SELECT i, 'owner ' || i, 0, 0, 'a' || i || '@example.com'
            FROM generate_series(1, $ACCOUNTS) i" \
      -c "VACUUM ANALYZE accounts"
}

# the usual SCD type-2 trigger, as found in tutorials
scd_trigger() {
    q -d flow <<'SQL'
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
VACUUM ANALYZE accounts_scd;
SQL
}

load() {
    pgbench -n -c "$CLIENTS" -j 2 -T "$SECONDS_LOAD" -f update.sql flow 2>/dev/null |
        awk '/^tps = / {print $3}'
}

printf 'flowstate history benchmark: %s, %s cores, %d rounds, %d accounts, %d clients for %d s\n' \
    "$(q -d postgres -c 'SHOW server_version')" "$(nproc)" "$ROUNDS" "$ACCOUNTS" "$CLIENTS" "$SECONDS_LOAD"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    new_table
    q -d flow -c CHECKPOINT
    plain=$(load)

    new_table
    q -d flow -c "ALTER TABLE accounts REPLICA IDENTITY FULL" >/dev/null
    q -d flow -c CHECKPOINT
    full=$(load)

    new_table
    scd_trigger
    q -d flow -c CHECKPOINT
    trigger=$(load)

    new_table
    q -d flow -c "ALTER TABLE accounts REPLICA IDENTITY FULL" \
      -c "SELECT flowstate.create_view('tiers', 'SELECT tier % 10 AS t, count(*) AS n, sum(balance) AS total
                                                FROM accounts GROUP BY 1')" >/dev/null
    q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
    q -d flow -c CHECKPOINT
    pid=$(decoder_pid)
    cpu0=$(cpu_seconds "$pid")
    view=$(load)
    q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
    view_cpu=$(echo "$(cpu_seconds "$pid") - $cpu0" | bc -l)
    view_txns=$(echo "$view * $SECONDS_LOAD" | bc -l)
    q -d flow -c "SELECT flowstate.drop_view('tiers')" >/dev/null

    new_table
    q -d flow -c "ALTER TABLE accounts REPLICA IDENTITY FULL" \
      -c "SELECT flowstate.create_history('accounts_history', 'accounts', '{id}',
                                         tracked => '{owner,tier}', type1 => '{email}')" >/dev/null
    q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
    q -d flow -c CHECKPOINT
    pid=$(decoder_pid)
    cpu0=$(cpu_seconds "$pid")
    v0=$(q -d flow -c "SELECT versions_written FROM flowstate.histories")
    t0=$(now)
    flow=$(load)
    q -d flow -c "SELECT flowstate.wait_for(NULL, '1h')" >/dev/null
    t1=$(now)
    cpu=$(echo "$(cpu_seconds "$pid") - $cpu0" | bc -l)
    versions=$(( $(q -d flow -c "SELECT versions_written FROM flowstate.histories") - v0 ))
    caught=$(elapsed "$t0" "$t1")
    # one version per update: every row's current version is its number of updates + 1
    differ=$(q -d flow -c "SELECT count(*) FROM accounts a JOIN accounts_history h USING (id)
                            WHERE h.is_current AND (h.version <> a.tier + 1 OR h.tier <> a.tier)")
    printf 'round %d: writers %8.0f tps plain, %8.0f full (%.2fx), %8.0f trigger (%.2fx), %8.0f view (%.2fx, decoder %.2f us/transaction), %8.0f history (%.2fx); history: %d versions in %.2f s (%.0f per s), decoder %.2f us/version, %s keys differ\n' \
        "$r" "$plain" "$full" "$(echo "$plain / $full" | bc -l)" "$trigger" "$(echo "$plain / $trigger" | bc -l)" \
        "$view" "$(echo "$plain / $view" | bc -l)" "$(echo "$view_cpu * 1000000 / $view_txns" | bc -l)" \
        "$flow" "$(echo "$plain / $flow" | bc -l)" \
        "$versions" "$caught" "$(echo "$versions / $caught" | bc -l)" "$(echo "$cpu * 1000000 / $versions" | bc -l)" "$differ"
    echo "$r x $plain $trigger $flow $versions $caught $cpu $differ $view $view_cpu $view_txns $full" >> results.txt
done

m() { awk -v c="$1" '{print $c}' results.txt | median; }
echo "medians of $ROUNDS rounds:"
printf '  writers: plain %.0f tps; REPLICA IDENTITY FULL alone %.0f tps (%.2fx plain); trigger %.0f tps (%.2fx plain); view %.0f tps (%.2fx plain); flowstate history %.0f tps (%.2fx plain, target <= 1.10x)\n' \
    "$(m 3)" "$(m 13)" "$(echo "$(m 3) / $(m 13)" | bc -l)" "$(m 4)" "$(echo "$(m 3) / $(m 4)" | bc -l)" "$(m 10)" "$(echo "$(m 3) / $(m 10)" | bc -l)" \
    "$(m 5)" "$(echo "$(m 3) / $(m 5)" | bc -l)"
printf '  decoder: %.2f us of CPU per transaction with the view\n' \
    "$(awk '{print $11 * 1000000 / $12}' results.txt | median)"
printf '  history: %.0f versions per second written (load start to caught up), decoder %.2f us of CPU per version\n' \
    "$(awk '{print $6 / $7}' results.txt | median)" "$(awk '{print $8 * 1000000 / $6}' results.txt | median)"
if awk '$9 != 0 {bad = 1} END {exit bad}' results.txt; then
    echo "the history held one version per update in every round"
else
    echo "the history differed from the updates"
    exit 1
fi
