#!/usr/bin/env bash
# Make sure the servers the tests start for themselves are installed: the
# PostgreSQL binaries and redis-server (the Celery tests start their own on
# 127.0.0.1). Installs Debian's packages when absent and we are root;
# otherwise says what to do. Without them the tests fail under CI=true and
# are skipped elsewhere.
set -euo pipefail

bash "$(dirname "$0")/ensure-postgresql.sh"

if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Redis (Debian package redis-server) for the Celery tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq redis-server >/dev/null
else
    echo "redis-server is not installed: the Celery tests will be skipped" \
         "(install the redis-server package to run them)." >&2
fi
