#!/bin/sh
# systemd-stop stops the slot's unit and disables it at boot.
# Environment: BAKERY_SUDO, APP, SLOT.
set -u
sudo -n "$BAKERY_SUDO" systemctl disable "$APP" "$SLOT" 2>/dev/null
sudo -n "$BAKERY_SUDO" systemctl stop "$APP" "$SLOT"
