#!/bin/sh
# docker-logs prints the last LINES lines of the slot container's own log
# (stdout and stderr kept apart), as bakery-agent so that a follow ends
# with the SSH session, and with FOLLOW=1 goes on printing new ones.
# With PROCESS, the logs of that process's containers (each prefixed).
# Environment: APP, SLOT, LINES, FOLLOW ("1" or empty), PROCESS (or empty).
set -u
set -- --timestamps
if [ -n "$FOLLOW" ]; then set -- "$@" --follow; fi
set -- "$@" --tail "$LINES"
if [ -z "${PROCESS:-}" ]; then
  docker logs "$@" "bakery-$APP-$SLOT"
  exit
fi
for c in $(docker ps -a --filter "label=bakery.app=$APP" --filter "label=bakery.slot=$SLOT" --filter "label=bakery.process=$PROCESS" --format '{{.Names}}'); do
  docker logs "$@" "$c" 2>&1 | sed "s/^/$c /" &
done
wait
