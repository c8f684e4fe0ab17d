#!/bin/sh
# docker-procs-stop stops every process container of the slot at once
# (SIGTERM, then each one's stop timeout) and keeps them, stopped, with
# their logs, until the slot's processes start again.
# Environment: APP, SLOT.
set -u
cs=$(docker ps -q --filter "label=bakery.app=$APP" --filter "label=bakery.slot=$SLOT" --filter label=bakery.process)
# One argument per container id.
# shellcheck disable=SC2086
if [ -n "$cs" ]; then docker stop $cs >/dev/null; fi
