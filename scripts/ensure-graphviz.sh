#!/usr/bin/env bash
# Make sure Graphviz's `dot` is on this machine, for the tests that render the
# DOT output of `tocsin graph`. Installs Debian's package when absent and we
# are root; otherwise says what to do. Under CI=true a missing `dot` is an
# error here, and the tests that need it fail.
set -euo pipefail

if command -v dot >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Graphviz (Debian package graphviz) for the tocsin graph tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq graphviz >/dev/null
elif [ "${CI:-}" = "true" ]; then
    echo "Graphviz is not installed and CI=true: install the graphviz package." >&2
    exit 1
else
    echo "Graphviz is not installed: the tocsin graph rendering tests will be" \
         "skipped (install the graphviz package to run them)." >&2
fi
