#!/bin/sh
# app-dir creates the app's directory on the node (before a bundle is
# uploaded into it).
# Environment: BAKERY_ROOT, APP.
set -eu
d=$BAKERY_ROOT/apps/$APP
mkdir -p "$d"
chmod 755 "$d"
