#!/bin/sh
# run-dir creates the app's private run directory (its slots' run scripts
# and docker env files).
# Environment: BAKERY_ROOT, APP.
set -eu
d=$BAKERY_ROOT/apps/$APP/run
mkdir -p "$d"
chmod 700 "$d"
