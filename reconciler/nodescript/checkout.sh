#!/bin/sh
# checkout (re)creates the release directory with the files of COMMIT from
# the app's bare repository. The tree is extracted (git archive | tar) into
# a temporary directory next to the release and renamed into place, so the
# release is never half-written; an existing release directory, complete
# or not, is replaced (moved aside, then removed), and leftovers of an
# interrupted run are removed. Running it again gives the same result.
#
# The files are exactly the commit's tree: the tree's .gitattributes
# export-ignore and export-subst do not apply. Submodules are not included
# (git archive leaves them out). The script also keeps the commit under
# refs/bakery/, which covers a commit the node had only as an ancestor of
# another one. Do not run it for the release a running slot serves from.
# Environment: BAKERY_ROOT, APP, RELEASE, COMMIT.
set -eu
repo=$BAKERY_ROOT/apps/$APP/repo.git
parent=$BAKERY_ROOT/apps/$APP/releases
rel=$parent/$RELEASE
if ! git --git-dir="$repo" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
	printf 'bakery: commit %s is not in %s\n' "$COMMIT" "$repo" >&2
	exit 1
fi
git --git-dir="$repo" update-ref "refs/bakery/$COMMIT" "$COMMIT"
# Attributes in the tree must not change what is checked out.
mkdir -p -- "$repo/info"
printf '%s\n' '* -export-ignore -export-subst' >"$repo/info/attributes"
mkdir -p -- "$parent"
rm -rf -- "$rel".bakery-tmp.* "$rel".bakery-old.*
tmp="$rel.bakery-tmp.$$"
old="$rel.bakery-old.$$"
trap 'rm -rf -- "$tmp"' EXIT
mkdir -- "$tmp" "$tmp/tree"
{ git --git-dir="$repo" archive --format=tar "$COMMIT" || echo "$?" >"$tmp/archive-failed"; } | tar -x -f - -C "$tmp/tree"
if [ -e "$tmp/archive-failed" ]; then
	printf 'bakery: git archive %s failed\n' "$COMMIT" >&2
	exit 1
fi
if [ -e "$rel" ] || [ -L "$rel" ]; then
	mv -- "$rel" "$old"
fi
mv -- "$tmp/tree" "$rel"
rm -rf -- "$old"
