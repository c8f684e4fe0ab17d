#!/bin/sh
# docker-remove removes the app's containers, its images and its slots'
# env files; with PURGE=1 its persistent volumes (label bakery.app=APP), which
# stay otherwise.
# Environment: BAKERY_ROOT, APP, REPO (the app's image repository), PURGE.
set -u
for s in blue green; do docker rm -f "bakery-$APP-$s" >/dev/null 2>&1 || true; done
# The processes' containers (spec.processes), one argument per id.
procs=$(docker ps -aq --filter "label=bakery.app=$APP" --filter label=bakery.process)
# shellcheck disable=SC2086
if [ -n "$procs" ]; then docker rm -f $procs >/dev/null; fi
imgs=$(docker image ls -q "$REPO" | sort -u)
# One argument per image id.
# shellcheck disable=SC2086
if [ -n "$imgs" ]; then docker image rm -f $imgs >/dev/null; fi
run=$BAKERY_ROOT/apps/$APP/run
rm -f "$run"/blue.env "$run"/green.env
if [ "${PURGE:-}" = 1 ]; then
  vols=$(docker volume ls -q --filter "label=bakery.app=$APP")
  # One argument per volume name.
  # shellcheck disable=SC2086
  if [ -n "$vols" ]; then docker volume rm -f $vols >/dev/null; fi
fi
