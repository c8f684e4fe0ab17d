#!/bin/sh
# remove-app deletes the app's directory (repository, releases, state).
# Environment: BAKERY_ROOT, APP.
set -u
rm -rf "${BAKERY_ROOT:?}/apps/${APP:?}"
