#!/bin/sh
# unpack makes a release from an archive that pack wrote on another node
# and the control plane uploaded to ARCHIVE: it checks the archive's
# SHA-256 first (a mismatch is refused with exit status 65 and nothing is
# unpacked), then, as bakery-agent (no root):
#   systemd: extracts it into a temporary directory next to the release
#   (one pass), refuses absolute member names and '..', links that are
#   absolute or lead out of it, hard links, special files and set-id
#   bits, writes the built marker and renames it into place;
#   docker: docker load, checks that IMAGE is there, and creates the
#   release directory with its built marker.
# The archive is removed whatever happens. Refusals exit 66.
# Environment: BAKERY_ROOT, APP, RELEASE, RUNTIME, IMAGE, FORMAT (gzip or
# zstd), ARCHIVE, SHA256, BUILD_HASH.
set -eu
parent=$BAKERY_ROOT/apps/$APP/releases
rel=$parent/$RELEASE
tmp="$rel.bakery-tmp.$$"
trap 'rm -rf -- "$tmp" "$tmp.names" "$ARCHIVE"' EXIT
refuse() {
	printf 'bakery: refused archive: %s\n' "$*" >&2
	exit 66
}
got=$(sha256sum <"$ARCHIVE" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
	printf 'bakery: refused archive: its SHA-256 is %s, the release packed on the builder has %s (corrupted on the way); nothing unpacked\n' "$got" "$SHA256" >&2
	exit 65
fi
mkdir -p -- "$parent"
rm -rf -- "$rel".bakery-tmp.* "$rel".bakery-old.*
if [ "$RUNTIME" = docker ]; then
	docker load -q -i "$ARCHIVE" >&2
	docker image inspect "$IMAGE" >/dev/null 2>&1 || refuse "it holds no image $IMAGE"
	mkdir -- "$tmp"
else
	case $FORMAT in
	zstd) decompress="zstd -dcq" ;;
	*) decompress="gzip -dc" ;;
	esac
	# One pass over the archive: GNU tar writes nothing outside the
	# directory (it strips a leading '/', skips members with '..' and
	# fails), and the names it lists (odd characters escaped) are refused
	# afterwards if absolute or with '..'.
	mkdir -- "$tmp"
	tar --extract --verbose --file="$ARCHIVE" --use-compress-program="$decompress" --no-same-owner --preserve-permissions \
		--delay-directory-restore -C "$tmp" >"$tmp.names" 2>&1 || refuse "tar could not extract it: $(head -n 3 "$tmp.names")"
	bad=$(grep -E -m 3 '^/|(^|/)\.\.(/|$)' "$tmp.names") || true
	rm -f -- "$tmp.names"
	[ -z "$bad" ] || refuse "member names absolute or with '..': $bad"
	bad=$(find "$tmp" \( \( ! -type f ! -type d ! -type l \) -o \( -type f -links +1 \) -o \( ! -type l -perm /6000 \) \) -print |
		head -n 3)
	[ -z "$bad" ] || refuse "special files, hard links or set-id bits: $bad"
	# shellcheck disable=SC2016 # expanded by the inner shell
	bad=$(find "$tmp" -type l -exec sh -c '
		base=$1; shift
		for l; do
			t=$(readlink -- "$l")
			case $t in /*) printf "%s -> %s\n" "$l" "$t"; continue ;; esac
			r=$(realpath -m -- "$l")
			case $r in "$base" | "$base"/*) ;; *) printf "%s -> %s\n" "$l" "$t" ;; esac
		done' sh "$(cd -P -- "$tmp" && pwd)" {} + | head -n 3)
	[ -z "$bad" ] || refuse "links out of the release: $bad"
fi
rm -f -- "$tmp/.bakery-built"
printf '%s' "$BUILD_HASH" >"$tmp/.bakery-built"
if [ -e "$rel" ] || [ -L "$rel" ]; then
	mv -- "$rel" "$rel.bakery-old.$$"
fi
mv -- "$tmp" "$rel"
rm -rf -- "$rel.bakery-old.$$"
