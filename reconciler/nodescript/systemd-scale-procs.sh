#!/bin/sh
# systemd-scale-procs starts instances 1..N of each process of the slot
# (enabled at boot) and stops the others, through the bakery-sudo helper.
# Environment: BAKERY_SUDO, APP, SLOT, PROCS ("NAME:REPLICAS ...", validated).
set -u
for p in $PROCS; do
  sudo -n "$BAKERY_SUDO" proc-scale "$APP" "$SLOT" "${p%%:*}" "${p#*:}" || exit 1
done
