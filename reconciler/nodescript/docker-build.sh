#!/bin/sh
# docker-build builds the release's image (the release was checked out
# before by checkout). Every value comes in through the environment; the
# build arguments as BA_0..BA_<NARGS-1>, each "NAME=value".
# Environment: BAKERY_ROOT, APP, RELEASE, COMMIT, DOCKERFILE, IMAGE,
# BAKERY_BUILD_HASH, NARGS, BA_<i>.
set -eu
BAKERY_RELEASE=$BAKERY_ROOT/apps/$APP/releases/$RELEASE
cd "$BAKERY_RELEASE"
rm -f .bakery-built
[ -f "$DOCKERFILE" ] || { echo "bakery: $DOCKERFILE not found in commit $COMMIT" >&2; exit 1; }
set -- --build-arg "BAKERY_COMMIT=$COMMIT"
a=
i=0
while [ "$i" -lt "$NARGS" ]; do
  eval "a=\$BA_$i"
  set -- "$@" --build-arg "$a"
  i=$((i + 1))
done
echo "bakery: docker build -f $DOCKERFILE -t $IMAGE" >&2
if ! docker build --force-rm -f "$DOCKERFILE" -t "$IMAGE" --label "bakery.app=$APP" --label "bakery.commit=$COMMIT" "$@" .; then
  echo "bakery: docker build failed" >&2; exit 1
fi
printf '%s' "$BAKERY_BUILD_HASH" > .bakery-built
