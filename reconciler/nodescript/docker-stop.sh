#!/bin/sh
# docker-stop stops the slot's container gracefully (SIGTERM, then SIGKILL
# after STOP seconds) and keeps it, stopped.
# Environment: NAME, STOP.
set -u
if docker container inspect "$NAME" >/dev/null 2>&1; then docker stop --time "$STOP" "$NAME" >/dev/null; fi
