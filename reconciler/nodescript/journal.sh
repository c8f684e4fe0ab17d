#!/bin/sh
# journal prints the last LINES lines of the slot's journal through the
# bakery-sudo helper, and with FOLLOW=1 goes on printing new ones until the
# command is cancelled.
# Environment: BAKERY_SUDO, APP, SLOT, LINES, FOLLOW ("1" or empty).
set -u
if [ -n "$FOLLOW" ]; then
  sudo -n "$BAKERY_SUDO" journal "$APP" "$SLOT" "$LINES" follow
else
  sudo -n "$BAKERY_SUDO" journal "$APP" "$SLOT" "$LINES"
fi
