#!/usr/bin/env bash
# The Kafka benchmark: bash bench/kafka.sh [rounds]   (or: make bench-kafka)
#
# First the JSON parsers: PostgreSQL's own (src/common/jsonapi.c) beside
# the simdjson reader Kafka streams use (bench/json_parsers.c).
#
# Then, against librdkafka's mock cluster (test/kafka_mock, 3 brokers in
# one process), each round produces 3,000,000 JSON messages of ~80 bytes
# {"ts":…,"key":…,"value":…} (1,000 keys, 50 minutes of event time) into a
# new topic of 64 partitions, and times
#   - kcat consuming the whole topic to /dev/null;
#   - flowstate: a continuous view of 1-minute tumbling count and sum per
#     key over a foreign table on the topic, from its creation until
#     flowstate.wait_for() sees every message applied, with one Kafka
#     worker; and the CPU seconds that worker used (all its threads);
# and checks the view against its defining query run as a batch query over
# the same messages loaded into a table.  kcat runs with the consumer
# properties that make it fastest here.  On one core:
# the server (and so its Kafka worker, librdkafka's threads included) and
# kcat run on CPU 0, the mock cluster on the others.  Prints each round,
# then the medians, and the medians of the rounds' ratios to kcat.  As
# root it first installs what it needs (.ci/setup.sh) and runs the server
# as postgres.
set -euo pipefail
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROUNDS=${1:-${ROUNDS:-5}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${FLOWSTATE_BENCH_DIR:-/tmp/flowstate-bench-kafka}
PORT=${FLOWSTATE_BENCH_PORT:-5487}
source "$HERE/lib.sh"

if [ "${FLOWSTATE_BENCH_CHILD:-}" != 1 ]; then
    bench_prepare_kafka
    cc -O2 -Wall -I"$("$PG_BIN/pg_config" --includedir-server)" -I"$ROOT/src" \
        "$HERE/json_parsers.c" "$ROOT/src/sources/kafka/json.o" -o "$WORK/json_parsers" \
        -L"$("$PG_BIN/pg_config" --pkglibdir)" -lpgcommon -lpgport -lsimdjson -lstdc++
    bench_reexec kafka.sh "$ROUNDS"
fi

# ---- as the server's user, in $WORK -------------------------------------
cd "$WORK"
./json_parsers
echo

bench_initdb < /dev/null
# the consumers on CPU 0, the brokers on the others
bench_kafka_start


MESSAGES=3000000
PARTITIONS=64
# message i: event time 2026-01-01 + i ms, key i * 7919 % 1000, a value in
# quarters (sums of floats then do not depend on the order of additions)
awk -v n=$MESSAGES 'BEGIN {
    for (i = 0; i < n; i++)
        printf "{\"ts\":\"2026-01-01T00:%02d:%02d.%03d+00:00\",\"key\":\"sensor-%07d\",\"value\":%d.%02d}\n",
               int(i / 60000), int(i / 1000) % 60, i % 1000, i * 7919 % 1000, i % 1000000, (i % 4) * 25
}' > messages.json
BYTES=$(($(wc -c < messages.json) / MESSAGES - 1))

# kcat at its fastest here: a deep prefetch queue (with librdkafka's default
# of 100,000 messages it waits for fetches; flowstate's worker, busier,
# prefetches 100,000 in fetches of 1 MB and does best so)
KAFKA_PROPERTIES="-X fetch.wait.max.ms=100 -X queued.min.messages=1000000"

q -c "CREATE EXTENSION flowstate" \
  -c "CREATE SERVER kafka FOREIGN DATA WRAPPER flowstate_kafka OPTIONS (brokers '$BROKERS')" \
  -c "CREATE TABLE batch (doc json)" \
  -c "\\copy batch FROM 'messages.json' (FORMAT text)" \
  -c "CREATE TABLE events_batch AS
        SELECT (doc->>'ts')::timestamptz AS ts, doc->>'key' AS key, (doc->>'value')::float8 AS value
          FROM batch" \
  -c "VACUUM ANALYZE events_batch" -c "CHECKPOINT" >/dev/null
VIEW_SQL="SELECT key, flowstate.tumble(ts, '1 minute') AS minute, count(*) AS n, sum(value) AS total
  FROM %s GROUP BY 1, 2"

printf 'flowstate Kafka benchmark: %s, %s cores (consumers on %s), %d rounds of %d messages of %d bytes over %d partitions\n' \
    "$(q -c 'SHOW server_version')" "$(nproc)" "${CONSUMER_CPU[*]:-every CPU}" "$ROUNDS" "$MESSAGES" "$BYTES" "$PARTITIONS"
: > results.txt
for ((r = 1; r <= ROUNDS; r++)); do
    topic=bench$r
    [ "$(kafka "topic $topic $PARTITIONS")" = ok ]
    [ "$(kafka "produce $topic $WORK/messages.json")" = "produced $MESSAGES" ]

    run_kcat() {
        t0=$(now)
        # shellcheck disable=SC2086
        GLIBC_TUNABLES=glibc.malloc.trim_threshold=67108864:glibc.malloc.mmap_threshold=33554432 \
            "${CONSUMER_CPU[@]}" kcat -C -b "$BROKERS" -t "$topic" -o beginning -e -q $KAFKA_PROPERTIES > /dev/null
        t1=$(now)
        kcat_s=$(elapsed "$t0" "$t1")
    }
    run_flowstate() {
        q -c "CREATE FOREIGN TABLE events$r (ts timestamptz NOT NULL, key text NOT NULL, value float8)
                SERVER kafka OPTIONS (topic '$topic', start 'earliest')" >/dev/null
        t0=$(now)
        q -c "SELECT flowstate.create_view('per_minute$r', \$\$ $(printf "$VIEW_SQL" "events$r") \$\$)" \
          -c "SELECT flowstate.wait_for(timeout => '10min')" >/dev/null
        t1=$(now)
        pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'flowstate kafka'")
        flow_cpu=$(cpu_seconds "$pid")
        flow_main_cpu=$(cpu_seconds "$pid/task/$pid")
        flow_s=$(elapsed "$t0" "$t1")
    }
    # odd rounds run kcat first, even rounds second
    if ((r % 2)); then run_kcat; run_flowstate; else run_flowstate; run_kcat; fi

    # the oracle: the view equals its defining query run as a batch query
    differ=$(q -c "SELECT count(*) FROM ((TABLE per_minute$r EXCEPT ALL ($(printf "$VIEW_SQL" events_batch)))
                     UNION ALL (($(printf "$VIEW_SQL" events_batch)) EXCEPT ALL TABLE per_minute$r)) d")
    dead=$(q -c "SELECT count(*) FROM flowstate.dead_letters")
    q -c "SELECT flowstate.drop_view('per_minute$r')" -c "DROP FOREIGN TABLE events$r" >/dev/null

    kcat_rate=$(echo "$MESSAGES / $kcat_s" | bc -l)
    flow_rate=$(echo "$MESSAGES / $flow_s" | bc -l)
    flow_cpu_rate=$(echo "$MESSAGES / $flow_cpu" | bc -l)
    flow_main_rate=$(echo "$MESSAGES / $flow_main_cpu" | bc -l)
    echo "$kcat_rate $flow_rate $flow_cpu_rate $flow_main_rate $differ $dead" >> results.txt
    printf 'round %d: kcat %.0f messages/s; flowstate %.0f messages/s, %.0f per CPU second (%.0f in its main thread); oracle: %s rows differ, %s dead letters\n' \
        "$r" "$kcat_rate" "$flow_rate" "$flow_cpu_rate" "$flow_main_rate" "$differ" "$dead"
done

col() { awk -v c="$1" '{print $c}' results.txt | median; }
kr=$(col 1); fr=$(col 2); fc=$(col 3); fm=$(col 4)
# each round's flowstate over kcat (the machine drifts between rounds)
ratio=$(awk '{print $2 / $1}' results.txt | median)
ratio_cpu=$(awk '{print $3 / $1}' results.txt | median)
bad=$(awk '$5 != 0 || $6 != 0' results.txt | wc -l)
echo
echo "medians of $ROUNDS rounds                                     measured          ratio   target"
printf 'kcat -C to /dev/null                                %9.0f messages/s\n' "$kr"
printf 'flowstate: consume + 1-minute count/sum view        %9.0f messages/s  %5.2fx   >= 0.75x kcat\n' \
    "$fr" "$ratio"
printf '  per CPU second of its Kafka worker (all threads)  %9.0f messages     %5.2fx   >= 1,000,000\n' "$fc" "$ratio_cpu"
printf '  per CPU second of its main thread                 %9.0f messages\n' "$fm"
if [ "$bad" -ne 0 ]; then
    echo "the view differed from its batch query, or messages were refused, in $bad rounds" >&2
    exit 1
fi
echo "the view equalled its batch query in every round"
