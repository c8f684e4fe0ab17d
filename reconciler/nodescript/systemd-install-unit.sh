#!/bin/sh
# systemd-install-unit has the bakery-sudo helper render the slot's unit
# from its own template and the unit's parameters, and reloads systemd.
# Environment: BAKERY_SUDO, APP, SLOT, PORT, RELEASE, STOP.
set -u
sudo -n "$BAKERY_SUDO" unit-install "$APP" "$SLOT" "$PORT" "$RELEASE" "$STOP" && sudo -n "$BAKERY_SUDO" daemon-reload
