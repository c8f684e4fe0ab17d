#!/bin/sh
# systemd-procs-stop stops every process of the slot (SIGTERM, then each
# unit's stop timeout to finish) and removes their units.
# Environment: BAKERY_SUDO, APP, SLOT.
set -u
sudo -n "$BAKERY_SUDO" proc-remove "$APP" "$SLOT" >/dev/null && sudo -n "$BAKERY_SUDO" daemon-reload
