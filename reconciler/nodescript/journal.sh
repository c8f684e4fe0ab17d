#!/bin/sh
# journal prints the last LINES lines of the slot's journal through the
# bakery-sudo helper, and with FOLLOW=1 goes on printing new ones until the
# command is cancelled.
# With PROCESS, the journal of that process's instances.
# Environment: BAKERY_SUDO, APP, SLOT, LINES, FOLLOW ("1" or empty), PROCESS (or empty).
set -u
set -- "$APP" "$SLOT" "$LINES"
if [ -n "$FOLLOW" ]; then set -- "$@" follow; fi
if [ -n "${PROCESS:-}" ]; then set -- "$@" --process "$PROCESS"; fi
sudo -n "$BAKERY_SUDO" journal "$@"
