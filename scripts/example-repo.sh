#!/usr/bin/env bash
# Usage: example-repo.sh [EXAMPLE] [DEST]
# Creates the git repository examples/EXAMPLE/app.yaml deploys from
# (EXAMPLE: hello (default) or tasks; DEST: /var/lib/bakery-examples/EXAMPLE.git
# by default) out of examples/EXAMPLE/app, so that the example can really be
# rolled out. Run it on the control plane's host; re-running it commits the
# current files again.
set -euo pipefail
example=${1:-hello}
[[ $example =~ ^[a-z][a-z0-9-]*$ && -d "$(dirname "$0")/../examples/$example/app" ]] ||
	{ echo "example-repo.sh: no example '$example' (examples/*/app)" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../examples/$example/app" && pwd)
dest=${2:-/var/lib/bakery-examples/$example.git}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -d "$dest" ]; then
	mkdir -p "$dest"
	git init -q --bare -b main "$dest"
fi
git clone -q "$dest" "$work/w" 2>/dev/null || git init -q -b main "$work/w"
cp -a "$src"/. "$work/w"/
git -C "$work/w" add -A
if git -C "$work/w" -c user.name=bakery -c user.email=bakery@localhost commit -q -m "$example example" >/dev/null 2>&1; then
	git -C "$work/w" push -q "$dest" HEAD:refs/heads/main
fi
echo "example repository: $dest (main at $(git --git-dir="$dest" rev-parse --short main))"
