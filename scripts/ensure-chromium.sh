#!/usr/bin/env bash
# Headless Chromium loads the debug timeline's pages in the browser test.
exec bash "$(dirname "$0")/ensure-debian-package.sh" chromium chromium "the timeline browser test"
