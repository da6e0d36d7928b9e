#!/usr/bin/env bash
# Graphviz's dot renders the DOT output of `tocsin graph` in the tests.
exec bash "$(dirname "$0")/ensure-debian-package.sh" dot graphviz "the tocsin graph rendering tests"
