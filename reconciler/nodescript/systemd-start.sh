#!/bin/sh
# systemd-start (re)starts the slot's unit and enables it at boot.
# Environment: BAKERY_SUDO, APP, SLOT.
set -u
sudo -n "$BAKERY_SUDO" systemctl reset-failed "$APP" "$SLOT" >/dev/null 2>&1
sudo -n "$BAKERY_SUDO" systemctl enable "$APP" "$SLOT" 2>/dev/null
sudo -n "$BAKERY_SUDO" systemctl restart "$APP" "$SLOT"
