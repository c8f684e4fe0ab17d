#!/bin/sh
# systemd-install-unit has the bakery-sudo helper render the slot's unit
# from its own template and the unit's parameters, and reloads systemd.
# Environment: BAKERY_SUDO, APP, SLOT, PORT, RELEASE, STOP, LIMITS (the
# helper's options --persist/--memory/--cpu/--tasks, validated tokens
# without blanks: split on purpose).
set -u
# shellcheck disable=SC2086
sudo -n "$BAKERY_SUDO" unit-install "$APP" "$SLOT" "$PORT" "$RELEASE" "$STOP" ${LIMITS:-} && sudo -n "$BAKERY_SUDO" daemon-reload
