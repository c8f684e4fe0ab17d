#!/bin/sh
# docker-run runs a command (a release command, a one-off command) in a
# container of its own from the release's image, with the slot's
# environment (its env file, read by the docker client: no secret on a
# command line), removed when it ends (docker run --rm). The command's
# output streams back and its exit status is this script's (124: timed
# out). The container is removed when the script is stopped or TIMEOUT
# passes.
# Environment: NAME, NETWORK, IMAGE, ENVFILE, TIMEOUT, TTY (1 or empty),
# CMD, APP, SLOT, COMMIT, RELEASE, DOCKER_LIMITS (--memory/--cpus/--pids-limit
# options), PERSIST ("VOLUME:PATH ...": validated, no blanks).
set -u
[ -f "$ENVFILE" ] || { echo "bakery: no environment file $ENVFILE (slot $SLOT never started)" >&2; exit 1; }
gone() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap 'gone; exit 143' TERM INT HUP
if [ "$NETWORK" = host ]; then set -- --network host; else set --; fi
if [ -n "${TTY:-}" ]; then set -- "$@" --interactive --tty; fi
# The persistent directories (as docker-start mounts them) and the limits.
if [ -n "${PERSIST:-}" ]; then
  wd=$(docker image inspect --format '{{.Config.WorkingDir}}' "$IMAGE") || exit 1
  for v in $PERSIST; do
    vol=${v%%:*}
    docker volume inspect "$vol" >/dev/null 2>&1 ||
      docker volume create --label "bakery.app=$APP" --label "bakery.path=${v#*:}" "$vol" >/dev/null || exit 1
    set -- "$@" --mount "type=volume,src=$vol,dst=${wd%/}/${v#*:}"
  done
fi
# shellcheck disable=SC2086 # validated tokens, split on purpose
set -- "$@" ${DOCKER_LIMITS:-}
docker run --rm --init --name "$NAME" --env-file "$ENVFILE" --log-driver none \
  --label "bakery.app=$APP" --label "bakery.slot=$SLOT" --label "bakery.commit=$COMMIT" \
  --label "bakery.release=$RELEASE" --label bakery.run=1 \
  "$@" "$IMAGE" /bin/sh -c "$CMD" &
pid=$!
n=0
while kill -0 "$pid" 2>/dev/null; do
  if [ "$n" -ge $((TIMEOUT * 5)) ]; then
    gone
    wait "$pid" 2>/dev/null
    echo "bakery: timed out after $TIMEOUT s" >&2
    exit 124
  fi
  sleep 0.2
  n=$((n + 1))
done
rc=0
wait "$pid" || rc=$?
exit "$rc"
