#!/bin/sh
# build runs the spec's install, test and build commands in the release
# directory (checked out before by checkout). The commands come in through
# the environment, never quoted into the script; the marker is written only
# when every command succeeded.
# Environment: BAKERY_ROOT, BAKERY_APP, BAKERY_RELEASE_ID,
# BAKERY_STEP_INSTALL, BAKERY_STEP_TEST, BAKERY_STEP_BUILD,
# BAKERY_BUILD_HASH, and the app's own variables, which the commands see
# (only names starting with BAKERY_ are Bakery's, so none is shadowed).
set -eu
BAKERY_RELEASE=$BAKERY_ROOT/apps/$BAKERY_APP/releases/$BAKERY_RELEASE_ID
export BAKERY_RELEASE
cd "$BAKERY_RELEASE"
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
