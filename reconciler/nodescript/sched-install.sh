#!/bin/sh
# sched-install writes a schedule's script (the spec's command, on stdin)
# into the app's run directory, then has the bakery-sudo helper render,
# install and enable the schedule's timer and service from the parameters.
# Environment: BAKERY_ROOT, BAKERY_SUDO, APP, NAME, SLOT, RELEASE, TIMEOUT,
# CONCURRENCY, RUNTIME, CALENDAR, LIMITS (the helper's options --persist/
# --memory/--cpu/--tasks, validated tokens without blanks: split on purpose).
set -eu
d=$BAKERY_ROOT/apps/$APP/run
if [ ! -d "$d" ]; then mkdir -p "$d"; chmod 755 "$d"; fi
f=$d/sched-$NAME.sh
cat >"$f.tmp"
chmod 644 "$f.tmp"
mv -f "$f.tmp" "$f"
# shellcheck disable=SC2086
r=$(sudo -n "$BAKERY_SUDO" sched-install "$APP" "$NAME" "$SLOT" "$RELEASE" "$TIMEOUT" "$CONCURRENCY" "$RUNTIME" "$CALENDAR" ${LIMITS:-})
echo "bakery: schedule $NAME ($CALENDAR) in the $SLOT slot's release: $r"
