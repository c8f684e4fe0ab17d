#!/bin/sh
# systemd-remove stops both slots' units and removes them and their
# environment files.
# Environment: BAKERY_SUDO, APP.
set -u
for s in blue green; do
  sudo -n "$BAKERY_SUDO" systemctl disable "$APP" "$s" 2>/dev/null
  sudo -n "$BAKERY_SUDO" systemctl stop "$APP" "$s" || true
  sudo -n "$BAKERY_SUDO" unit-remove "$APP" "$s"
  sudo -n "$BAKERY_SUDO" env-remove "$APP" "$s"
done
sudo -n "$BAKERY_SUDO" daemon-reload
