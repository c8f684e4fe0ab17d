#!/bin/sh
# systemd-procs-stop stops every process of the slot (SIGTERM, then each
# unit's stop timeout to finish) and removes their units; with PROCS, only
# those processes.
# Environment: BAKERY_SUDO, APP, SLOT, PROCS (validated names, or empty).
set -u
if [ -z "$PROCS" ]; then
  sudo -n "$BAKERY_SUDO" proc-remove "$APP" "$SLOT" >/dev/null || exit 1
fi
for p in $PROCS; do
  sudo -n "$BAKERY_SUDO" proc-remove "$APP" "$SLOT" "$p" >/dev/null || exit 1
done
sudo -n "$BAKERY_SUDO" daemon-reload
