#!/bin/sh
# fetch fetches COMMIT from the git bundle at BUNDLE (uploaded there by the
# control plane) into the app's bare repository, as refs/bakery/<commit>,
# creating the repository if needed. It checks that the commit is then
# present and removes the bundle file whether or not the fetch worked. It
# is safe to run again (with a bundle).
# Environment: BAKERY_ROOT, APP, BUNDLE, COMMIT.
set -eu
repo=$BAKERY_ROOT/apps/$APP/repo.git
trap 'rm -f -- "$BUNDLE"' EXIT
if [ ! -f "$repo/HEAD" ]; then
	mkdir -p -- "$repo"
	git -c init.defaultBranch=main init --bare -q -- "$repo"
fi
git --git-dir="$repo" fetch -q "$BUNDLE" "refs/bakery/$COMMIT:refs/bakery/$COMMIT"
if ! git --git-dir="$repo" cat-file -e "$COMMIT^{commit}"; then
	printf 'bakery: commit %s is not in %s after fetching %s\n' "$COMMIT" "$repo" "$BUNDLE" >&2
	exit 1
fi
