#!/usr/bin/env bash
# Runs the whole flowstate test suite: pg_regress, isolation specs and TAP,
# each against throwaway servers.  As root, the servers run as the postgres
# user on a copy of the tree that user owns.
set -euo pipefail
start=$(date +%s)
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

if [ "$(id -u)" -eq 0 ]; then
    DIR=${FLOWSTATE_TEST_DIR:-/tmp/flowstate-test}
    rm -rf "$DIR"
    mkdir -p "$DIR"
    rsync -a --exclude='.git' --exclude='tmp_*' --exclude='results' --exclude='output_iso' \
        --exclude='.demo' --exclude='*.o' --exclude='*.so' --exclude='*.bc' "$ROOT/" "$DIR/"
    chown -R postgres:postgres "$DIR"
    run() { su postgres -s /bin/bash -c "cd '$DIR' && PATH='$PATH' $*"; }
else
    DIR=$ROOT
    run() { (cd "$DIR" && eval "$*"); }
fi

# the dependency rule of src/README.md
bash "$ROOT/.ci/check-deps.sh"

status=0
rm -rf "$DIR/tmp_check"
out="$DIR/installcheck.out"
set +e
run make installcheck PG_CONFIG="$PG_BIN/pg_config" ${PROVE_FLAGS:+PROVE_FLAGS="'$PROVE_FLAGS'"} 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e

if [ "$status" -ne 0 ]; then
    for f in "$DIR/regression.diffs" "$DIR/output_iso/regression.diffs"; do
        [ -f "$f" ] && { echo "=== $f (first 300 lines)"; head -n 300 "$f"; }
    done
    # the logs of the TAP files that failed: their own and their servers'
    for t in $(grep -oE '^test/t/[0-9]+_[a-z0-9_]+\.pl' "$out" | sort -u); do
        n=$(basename "$t" .pl)
        grep -qE "^$t +\(Wstat|^$t .*(Dubious|Failed)" "$out" || continue
        for f in "$DIR/tmp_check/log/regress_log_$n" "$DIR/tmp_check/log/${n}"_*.log; do
            [ -f "$f" ] && { echo "=== $f (last 120 lines)"; tail -n 120 "$f"; }
        done
    done
    # last, so that a truncated output still shows what failed
    echo "=== what failed"
    grep -E '\.\.\. +(FAILED|failed)|^not ok|Dubious|^test/t/.*(Wstat|Failed)|^Failed [0-9]+/|^make.*Error' "$out" | head -n 60 || true
    grep -E '(^|\) )(not ok|#   Failed test)' "$DIR"/tmp_check/log/regress_log_* 2>/dev/null | head -n 40 || true
    echo "flowstate: tests FAILED after $(( $(date +%s) - start )) s" >&2
    exit "$status"
fi
# PGXS skips the TAP tier silently when PostgreSQL was built without it
tap_files=$(ls "$DIR"/test/t/*.pl | wc -l)
tap_logs=$(ls "$DIR"/tmp_check/log/regress_log_* 2>/dev/null | wc -l)
if [ "$tap_logs" -ne "$tap_files" ]; then
    echo "flowstate: the TAP tier ran $tap_logs of $tap_files test files" >&2
    exit 1
fi
echo "flowstate: all test tiers passed in $(( $(date +%s) - start )) s"
