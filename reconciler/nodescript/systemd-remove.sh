#!/bin/sh
# systemd-remove stops both slots' units (processes too) and removes them, their
# environment files and the app's own user and data directory.
# With PURGE=1 its persistent directories go too; otherwise they and the
# user that owns them stay (app-remove --keep-data).
# Environment: BAKERY_SUDO, APP, PURGE.
set -u
for s in blue green; do
  sudo -n "$BAKERY_SUDO" proc-remove "$APP" "$s" >/dev/null || true
  sudo -n "$BAKERY_SUDO" systemctl disable "$APP" "$s" 2>/dev/null
  sudo -n "$BAKERY_SUDO" systemctl stop "$APP" "$s" || true
  sudo -n "$BAKERY_SUDO" unit-remove "$APP" "$s"
  sudo -n "$BAKERY_SUDO" env-remove "$APP" "$s"
done
sudo -n "$BAKERY_SUDO" daemon-reload
if [ "${PURGE:-}" = 1 ]; then
  sudo -n "$BAKERY_SUDO" app-remove "$APP" >/dev/null
else
  sudo -n "$BAKERY_SUDO" app-remove "$APP" --keep-data >/dev/null
fi
