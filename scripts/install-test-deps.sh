#!/usr/bin/env bash
# Installs what Bakery's test suite needs on a Debian/Ubuntu machine, as
# root: PostgreSQL (the tests start throwaway clusters themselves), OpenSSH
# server and client (the tests start their own sshd), git, and the tools the
# test-node harness uses (systemd-nspawn, mmdebstrap, iproute2, zstd), and
# Chromium for the web UI's browser tests.
# Idempotent: only missing packages are installed; apt-get update runs only
# when something is missing.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: run as root (sudo $0)" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: needs a Debian/Ubuntu machine with apt-get" >&2
	exit 1
fi
if ! command -v go >/dev/null 2>&1; then
	echo "install-test-deps: Go 1.26 or newer must be on PATH (https://go.dev/dl)" >&2
	exit 1
fi

# package → a file it installs (cheap presence check)
declare -A want=(
	[postgresql]=/usr/lib/postgresql
	[openssh-server]=/usr/sbin/sshd
	[openssh-client]=/usr/bin/ssh
	[git]=/usr/bin/git
	[systemd-container]=/usr/bin/systemd-nspawn
	[mmdebstrap]=/usr/bin/mmdebstrap
	[iproute2]=/usr/sbin/ip
	[zstd]=/usr/bin/zstd
	[procps]=/usr/bin/pgrep
	[curl]=/usr/bin/curl
	[ca-certificates]=/etc/ssl/certs
	[make]=/usr/bin/make
	[busybox]=/usr/bin/busybox
	# make lint and reconciler/nodescript's tests lint every shell script.
	[shellcheck]=/usr/bin/shellcheck
	# The web UI's browser tests (headless, driven over DevTools); the
	# fonts are only recommended by chromium, and the screenshots need one.
	[chromium]=/usr/bin/chromium
	[fonts-liberation]=/usr/share/fonts/truetype/liberation
	# The node helper's unit and site renderings are checked with
	# `systemd-analyze verify` and `nginx -t` (reconciler/nodefiles).
	[systemd]=/usr/bin/systemd-analyze
	[nginx-light]=/usr/sbin/nginx
)
missing=()
for pkg in "${!want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || [ ! -e "${want[$pkg]}" ]; then
		missing+=("$pkg")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-test-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# --no-install-recommends: systemd-container recommends libnss-mymachines,
	# which rewrites the host's nsswitch.conf.
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# sshd needs its privilege-separation directory even when never started as a service.
mkdir -p /run/sshd
echo "install-test-deps: ok"
