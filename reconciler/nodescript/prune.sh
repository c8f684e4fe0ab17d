#!/bin/sh
# prune removes the app's releases beyond the KEEP newest (by mtime),
# never one named in PROTECT.
# Environment: BAKERY_ROOT, APP, KEEP, PROTECT (release names, space-separated).
set -u
cd "$BAKERY_ROOT/apps/$APP/releases" || exit 0
n=0
# Release names are commit-buildhash: no blanks, no glob characters.
# shellcheck disable=SC2045
for r in $(ls -1t); do
  case " $PROTECT " in *" $r "*) continue ;; esac
  n=$((n + 1))
  if [ "$n" -gt "$KEEP" ]; then echo "bakery: pruning release $r"; rm -rf "./$r"; fi
done
