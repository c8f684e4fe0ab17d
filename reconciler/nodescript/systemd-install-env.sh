#!/bin/sh
# systemd-install-env creates the app's run directory and installs the
# slot's environment file (on stdin) through the bakery-sudo helper, which
# writes it root-owned where systemd reads it.
# Environment: BAKERY_ROOT, BAKERY_SUDO, APP, SLOT.
set -u
d=$BAKERY_ROOT/apps/$APP/run
mkdir -p "$d" && chmod 755 "$d" && sudo -n "$BAKERY_SUDO" env-install "$APP" "$SLOT" >/dev/null
