#!/bin/sh
# haves prints the commits under refs/bakery/ in the app's bare repository,
# one per line, and nothing if the repository does not exist (ParseHaves
# reads it).
# Environment: BAKERY_ROOT, APP.
set -eu
repo=$BAKERY_ROOT/apps/$APP/repo.git
if [ -f "$repo/HEAD" ]; then
	git --git-dir="$repo" for-each-ref --format='%(objectname)' refs/bakery/
fi
