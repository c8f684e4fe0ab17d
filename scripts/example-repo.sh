#!/usr/bin/env bash
# Creates the git repository examples/hello/app.yaml deploys from
# (/var/lib/bakery-examples/hello.git by default) out of examples/hello/app,
# so that the example can really be rolled out. Run it on the control
# plane's host; re-running it commits the current files again.
set -euo pipefail
src=$(cd "$(dirname "$0")/../examples/hello/app" && pwd)
dest=${1:-/var/lib/bakery-examples/hello.git}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -d "$dest" ]; then
	mkdir -p "$dest"
	git init -q --bare -b main "$dest"
fi
git clone -q "$dest" "$work/w" 2>/dev/null || git init -q -b main "$work/w"
cp -a "$src"/. "$work/w"/
git -C "$work/w" add -A
if git -C "$work/w" -c user.name=bakery -c user.email=bakery@localhost commit -q -m "hello example" >/dev/null 2>&1; then
	git -C "$work/w" push -q "$dest" HEAD:refs/heads/main
fi
echo "example repository: $dest (main at $(git --git-dir="$dest" rev-parse --short main))"
