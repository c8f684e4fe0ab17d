#!/bin/sh
# pack writes a built release to stdout as one compressed archive, for the
# control plane to ship to the app's other nodes (spec.build.on one):
# systemd: the release directory as a tar archive (hard links stored as
# files, owners as numbers), compressed with FORMAT; docker: the release's
# image as `docker save` writes it, gzip-compressed (docker load reads
# that). It runs as bakery-agent and only reads.
#
# A release that cannot travel safely is not packed: a symbolic link that
# is absolute or leads out of the release, or a file that is neither
# regular, a directory nor a link. The script then prints
# "bakery: not shippable: ..." and exits 75, and the other nodes build
# the release themselves.
# Environment: BAKERY_ROOT, APP, RELEASE, RUNTIME, IMAGE, FORMAT (gzip or
# zstd), BUILD_HASH.
set -eu
rel=$BAKERY_ROOT/apps/$APP/releases/$RELEASE
cd -P -- "$rel"
if [ "$(cat .bakery-built 2>/dev/null)" != "$BUILD_HASH" ]; then
	printf 'bakery: release %s is not built\n' "$RELEASE" >&2
	exit 1
fi
if [ "$RUNTIME" = docker ]; then
	flag=$BAKERY_ROOT/apps/$APP/.pack-failed.$$
	rm -f -- "$flag"
	{ docker save "$IMAGE" || echo "$?" >"$flag"; } | gzip -1
	if [ -e "$flag" ]; then
		rm -f -- "$flag"
		printf 'bakery: docker save %s failed\n' "$IMAGE" >&2
		exit 1
	fi
	exit 0
fi
# shellcheck disable=SC2016 # expanded by the inner shell
bad=$(find . \( ! -type f ! -type d ! -type l \) -print -o -type l -exec sh -c '
	base=$(pwd -P)
	for l; do
		t=$(readlink -- "$l")
		case $t in /*) printf "%s -> %s\n" "$l" "$t"; continue ;; esac
		r=$(realpath -m -- "$l")
		case $r in "$base" | "$base"/*) ;; *) printf "%s -> %s\n" "$l" "$t" ;; esac
	done' sh {} + | head -n 3)
if [ -n "$bad" ]; then
	printf 'bakery: not shippable: links out of the release or special files (every node builds it):\n%s\n' "$bad" >&2
	exit 75
fi
case $FORMAT in
zstd) compress="zstd -q -T0" ;;
*) compress="gzip -1" ;;
esac
exec tar --create --file=- --use-compress-program="$compress" --hard-dereference --numeric-owner --sort=name --format=posix \
	--pax-option=delete=atime,delete=ctime -C . .
