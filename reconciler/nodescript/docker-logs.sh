#!/bin/sh
# docker-logs prints the last LINES lines of the slot container's own log
# (stdout and stderr kept apart), as bakery-agent so that a follow ends
# with the SSH session, and with FOLLOW=1 goes on printing new ones.
# Environment: APP, SLOT, LINES, FOLLOW ("1" or empty).
set -u
if [ -n "$FOLLOW" ]; then
  docker logs --timestamps --follow --tail "$LINES" "bakery-$APP-$SLOT"
else
  docker logs --timestamps --tail "$LINES" "bakery-$APP-$SLOT"
fi
