#!/bin/sh
# sched-remove stops and removes one schedule of the app (NAME), or every
# one (NAME empty), and its script.
# Environment: BAKERY_ROOT, BAKERY_SUDO, APP, NAME.
set -eu
d=$BAKERY_ROOT/apps/$APP/run
if [ -n "$NAME" ]; then
  sudo -n "$BAKERY_SUDO" sched-remove "$APP" "$NAME"
  rm -f "$d/sched-$NAME.sh"
else
  sudo -n "$BAKERY_SUDO" sched-remove "$APP"
  rm -f "$d"/sched-*.sh
fi
