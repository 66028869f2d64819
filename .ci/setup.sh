#!/usr/bin/env bash
# Installs what flowstate needs on Debian 12 (as root), then builds and
# installs the extension into PostgreSQL 15.  Sourced by test.sh and demo.sh;
# exports ROOT (the repository), PG_BIN and PATH.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# FLOWSTATE_PG_BIN: another installation of PostgreSQL 15 (a private copy)
PG_BIN=${FLOWSTATE_PG_BIN:-/usr/lib/postgresql/15/bin}
export ROOT PG_BIN PATH="$PG_BIN:$PATH"

PACKAGES=(build-essential postgresql-15 postgresql-server-dev-15 postgresql-contrib
          libipc-run-perl librdkafka-dev libsimdjson-dev kcat postgresql-15-hll postgresql-15-tdigest rsync)

if [ "$(id -u)" -eq 0 ]; then
    if ! dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
        echo "flowstate: installing Debian packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${PACKAGES[@]}" >/dev/null
    fi
elif ! dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
    echo "flowstate: missing Debian packages; run this script as root to install them" >&2
    exit 1
fi

MAKE_ARGS=(PG_CONFIG="$PG_BIN/pg_config")
[ -n "${COPT:-}" ] && MAKE_ARGS+=(COPT="$COPT")

echo "flowstate: building"
make -s -C "$ROOT" "${MAKE_ARGS[@]}"
if [ -w "$("$PG_BIN/pg_config" --pkglibdir)" ]; then
    make -s -C "$ROOT" install "${MAKE_ARGS[@]}" >/dev/null
else
    echo "flowstate: cannot write $("$PG_BIN/pg_config" --pkglibdir); run as root to install" >&2
    exit 1
fi
