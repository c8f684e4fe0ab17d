#!/bin/sh
# systemd-install-unit installs the slot's unit (on stdin) through the
# bakery-sudo helper, which renders it from its own template, and reloads
# systemd.
# Environment: BAKERY_SUDO, APP, SLOT.
set -u
sudo -n "$BAKERY_SUDO" unit-install "$APP" "$SLOT" && sudo -n "$BAKERY_SUDO" daemon-reload
