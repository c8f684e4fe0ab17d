#!/bin/sh
# systemd-remove stops both slots' units (processes too) and removes them, their
# environment files and the app's own user and data directory.
# Environment: BAKERY_SUDO, APP.
set -u
for s in blue green; do
  sudo -n "$BAKERY_SUDO" proc-remove "$APP" "$s" >/dev/null || true
  sudo -n "$BAKERY_SUDO" systemctl disable "$APP" "$s" 2>/dev/null
  sudo -n "$BAKERY_SUDO" systemctl stop "$APP" "$s" || true
  sudo -n "$BAKERY_SUDO" unit-remove "$APP" "$s"
  sudo -n "$BAKERY_SUDO" env-remove "$APP" "$s"
done
sudo -n "$BAKERY_SUDO" daemon-reload
sudo -n "$BAKERY_SUDO" app-remove "$APP" >/dev/null
