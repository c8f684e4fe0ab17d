#!/bin/sh
# run-dir creates the app's run directory (its slots' run scripts, which
# the app's own user runs, and docker env files, 0600).
# Environment: BAKERY_ROOT, APP.
set -eu
d=$BAKERY_ROOT/apps/$APP/run
mkdir -p "$d"
chmod 755 "$d"
