#!/usr/bin/env bash
# usage: ensure-debian-package.sh COMMAND PACKAGE "WHAT NEEDS IT"
# Make sure COMMAND is on this machine for the tests that need it. Installs
# Debian's PACKAGE when absent and we are root; otherwise says what to do.
# Under CI=true a missing COMMAND is an error here, and the tests that need
# it fail (never skip).
set -euo pipefail
command_name="$1" package="$2" purpose="$3"

if command -v "$command_name" >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing $package (Debian package) for $purpose"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$package" >/dev/null
elif [ "${CI:-}" = "true" ]; then
    echo "$command_name is not installed and CI=true: install the $package package ($purpose)." >&2
    exit 1
else
    echo "$command_name is not installed: $purpose will be skipped" \
         "(install the $package package to run them)." >&2
fi
