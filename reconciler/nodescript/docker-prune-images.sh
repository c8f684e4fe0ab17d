#!/bin/sh
# docker-prune-images removes the app's images whose release directory is
# gone (release pruning keeps keepReleases of them) and its dangling
# images. An image a container still uses stays (docker refuses without -f).
# Environment: BAKERY_ROOT, APP, REPO (the app's image repository).
set -u
r=$BAKERY_ROOT/apps/$APP/releases
for t in $(docker image ls --format '{{.Tag}}' "$REPO"); do
  [ "$t" = "<none>" ] && continue
  [ -d "$r/$t" ] && continue
  if docker image rm "$REPO:$t" >/dev/null 2>&1; then echo "bakery: pruned image $REPO:$t"; else echo "bakery: image $REPO:$t is still in use; kept"; fi
done
docker image prune --force --filter "label=bakery.app=$APP" >/dev/null
