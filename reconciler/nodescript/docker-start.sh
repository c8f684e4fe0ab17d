#!/bin/sh
# docker-start (re)creates the slot's container from the release's image.
# The app's environment reaches it only through the env file; the published
# port listens on the node's loopback only (nginx proxies).
# Environment: NAME, NETWORK, PORT, IMAGE, CMD, STOP, ENVFILE, APP, SLOT,
# COMMIT, RELEASE, REVISION, DOCKER_LIMITS (--memory/--cpus/--pids-limit
# options), PERSIST ("VOLUME:PATH ...": validated, no blanks).
set -u
# The persistent directories: docker volumes (created once, labelled, kept
# when containers go) mounted below the image's working directory.
mounts=
if [ -n "${PERSIST:-}" ]; then
  wd=$(docker image inspect --format '{{.Config.WorkingDir}}' "$IMAGE") || exit 1
  for v in $PERSIST; do
    vol=${v%%:*}
    docker volume inspect "$vol" >/dev/null 2>&1 ||
      docker volume create --label "bakery.app=$APP" --label "bakery.path=${v#*:}" "$vol" >/dev/null || exit 1
    mounts="$mounts --mount type=volume,src=$vol,dst=${wd%/}/${v#*:}"
  done
fi
docker rm -f "$NAME" >/dev/null 2>&1 || true
if [ "$NETWORK" = host ]; then set -- --network host; else set -- --publish "127.0.0.1:$PORT:$PORT"; fi
set -- "$@" "$IMAGE"
if [ -n "$CMD" ]; then set -- "$@" /bin/sh -c "$CMD"; fi
# shellcheck disable=SC2086 # DOCKER_LIMITS and mounts: validated tokens, split on purpose
docker run --detach --name "$NAME" --init --restart unless-stopped --stop-timeout "$STOP" \
  --env-file "$ENVFILE" --log-opt max-size=10m --log-opt max-file=3 \
  --label "bakery.app=$APP" --label "bakery.slot=$SLOT" --label "bakery.commit=$COMMIT" \
  --label "bakery.release=$RELEASE" --label "bakery.revision=$REVISION" ${DOCKER_LIMITS:-} $mounts "$@" >/dev/null || exit 1
echo "bakery: started container $NAME from $IMAGE"
