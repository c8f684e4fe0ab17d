#!/bin/sh
# build runs the spec's install, test and build commands in the release
# directory (checked out before by checkout) as the app's own user: the
# bakery-sudo helper (build) runs what it reads on stdin as that user, in
# the release, with a clean environment. The commands and the app's
# environment come in BAKERY_EXPORTS (export lines quoted by the control
# plane), never as script text; the marker is written only when every
# command succeeded.
# Environment: BAKERY_SUDO, BAKERY_APP, BAKERY_RELEASE_ID, BAKERY_EXPORTS
# (which sets BAKERY_STEP_INSTALL, BAKERY_STEP_TEST, BAKERY_STEP_BUILD,
# BAKERY_BUILD_HASH and the app's own variables). The commands see
# BAKERY_RELEASE, the release directory the helper starts them in.
set -eu
{
  printf '%s\n' "$BAKERY_EXPORTS"
  cat <<'EOF'
set -eu
BAKERY_RELEASE=$(pwd)
export BAKERY_RELEASE
rm -f .bakery-built
for step in install test build; do
  case $step in
    install) c=$BAKERY_STEP_INSTALL ;;
    test) c=$BAKERY_STEP_TEST ;;
    build) c=$BAKERY_STEP_BUILD ;;
  esac
  [ -n "$c" ] || continue
  echo "bakery: running $step: $c" >&2
  if ! sh -c "$c"; then echo "bakery: $step failed" >&2; exit 1; fi
done
printf '%s' "$BAKERY_BUILD_HASH" > .bakery-built
EOF
} | sudo -n "$BAKERY_SUDO" build "$BAKERY_APP" "$BAKERY_RELEASE_ID"
