#!/bin/sh
# systemd-install-procs has the bakery-sudo helper render the template unit
# of each process of the slot (proc-install), removes the slot's process
# units that are no longer in the spec, and reloads systemd.
# Environment: BAKERY_SUDO, APP, SLOT, RELEASE, PROCS ("NAME:STOP-SECONDS ...",
# validated names), LIMITS (the helper's options --persist/--memory/--cpu/
# --tasks, validated tokens without blanks: split on purpose).
set -u
keep=" "
for p in $PROCS; do
  name=${p%%:*}
  # shellcheck disable=SC2086
  sudo -n "$BAKERY_SUDO" proc-install "$APP" "$SLOT" "$name" "$RELEASE" "${p#*:}" ${LIMITS:-} >/dev/null || exit 1
  keep="$keep$name "
done
for f in /etc/systemd/system/bakery-"$APP"-"$SLOT"-*@.service; do
  [ -f "$f" ] || continue
  name=${f#/etc/systemd/system/bakery-"$APP"-"$SLOT"-}
  name=${name%@.service}
  # Not this app's: another app whose name continues with -SLOT-.
  case "-$name-" in *-blue-* | *-green-*) continue ;; esac
  case $keep in *" $name "*) continue ;; esac
  sudo -n "$BAKERY_SUDO" proc-remove "$APP" "$SLOT" "$name" >/dev/null || exit 1
done
sudo -n "$BAKERY_SUDO" daemon-reload
