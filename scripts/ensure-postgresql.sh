#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries are on this machine, for the tests
# that run against a real PostgreSQL (they start and stop their own throwaway
# server on 127.0.0.1). Installs Debian's package when absent and we are root;
# otherwise says what to do. The tests fail without it under CI=true and are
# skipped elsewhere.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing PostgreSQL (Debian package postgresql) for the model-signal tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
else
    echo "PostgreSQL is not installed: the PostgreSQL tests will be skipped" \
         "(install the postgresql package to run them)." >&2
fi
