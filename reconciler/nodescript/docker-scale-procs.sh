#!/bin/sh
# docker-scale-procs runs instances 1..N of each process of the slot as
# containers bakery-APP-SLOT-PROC-N of the release's image (the slot's env
# file, PORT empty, BAKERY_PROCESS and BAKERY_REPLICA set; SIGTERM and the
# process's stop timeout when stopped) and stops the slot's other process
# containers. A running container of the release is left alone.
# Environment: APP, SLOT, IMAGE, ENVFILE, NETWORK, COMMIT, RELEASE, REVISION,
# PROCS ("NAME:REPLICAS:STOP ..."), CMD_0, CMD_1, ... (each process's command),
# DOCKER_LIMITS (--memory/--cpus/--pids-limit options), PERSIST ("VOLUME:PATH
# ...": validated, no blanks).
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
want=" "
i=0
for p in $PROCS; do
  name=${p%%:*}
  rest=${p#*:}
  replicas=${rest%%:*}
  stop=${rest#*:}
  eval "cmd=\$CMD_$i"
  i=$((i + 1))
  n=1
  while [ "$n" -le "$replicas" ]; do
    c=bakery-$APP-$SLOT-$name-$n
    want="$want$c "
    st=$(docker container inspect --format '{{.State.Running}} {{index .Config.Labels "bakery.release"}}' "$c" 2>/dev/null) || st=
    if [ "$st" != "true $RELEASE" ]; then
      docker rm -f "$c" >/dev/null 2>&1 || true
      if [ "$NETWORK" = host ]; then set -- --network host; else set --; fi
      # shellcheck disable=SC2154,SC2086 # cmd is set by the eval above; limits and mounts split on purpose
      docker run --detach --name "$c" --init --restart unless-stopped --stop-timeout "$stop" \
        --env-file "$ENVFILE" --env PORT= --env "BAKERY_PROCESS=$name" --env "BAKERY_REPLICA=$n" \
        --log-opt max-size=10m --log-opt max-file=3 \
        --label "bakery.app=$APP" --label "bakery.slot=$SLOT" --label "bakery.process=$name" --label "bakery.replica=$n" \
        --label "bakery.commit=$COMMIT" --label "bakery.release=$RELEASE" --label "bakery.revision=$REVISION" \
        ${DOCKER_LIMITS:-} $mounts "$@" "$IMAGE" /bin/sh -c "$cmd" >/dev/null || exit 1
      echo "bakery: started container $c from $IMAGE"
    fi
    n=$((n + 1))
  done
done
for c in $(docker ps -a --filter "label=bakery.app=$APP" --filter "label=bakery.slot=$SLOT" --filter label=bakery.process --format '{{.Names}}'); do
  case $want in *" $c "*) continue ;; esac
  docker stop "$c" >/dev/null && docker rm "$c" >/dev/null || exit 1
done
