#!/usr/bin/env bash
# pebble.sh — a local ACME server for Bakery's TLS tests: Let's Encrypt's test server
# Pebble and its DNS helper pebble-challtestsrv, on the host bridge address of a test-node
# lab (scripts/testnodes.sh), so that real certbot on the nodes gets real certificates over
# HTTP-01 validated against the nodes' real nginx. Nothing leaves the machine: Pebble
# resolves names only through challtestsrv, and the nodes reach only the bridge.
#
# Usage (as root; BAKERY_TESTNODES_LAB selects the lab, as for testnodes.sh):
#   pebble.sh up                 install (go install from the Go module proxy, cached) and
#                                start both servers; restarts them when already running
#   pebble.sh down               stop them
#   pebble.sh status             "running" or "stopped" (exit 1)
#   pebble.sh add-a HOST IP      answer A queries for HOST with IP (challtestsrv)
#   pebble.sh clear-a HOST       forget HOST again (validations for it then fail)
#   pebble.sh trust NODE         make NODE trust Pebble's API certificate (system trust
#                                store) and resolve "pebble" to the bridge (/etc/hosts)
#   pebble.sh root               print Pebble's current issuing root (PEM); it changes on
#                                every start
#   pebble.sh env                print shell assignments: PEBBLE_DIR, PEBBLE_ROOT (file
#                                with the issuing root), PEBBLE_CA (API CA),
#                                ACME_SERVER (what certbot on the nodes uses)
#
# Environment: PEBBLE_VALIDITY (seconds a certificate is valid, default 7776000 = 90 days;
# Pebble gets a single profile so that every certificate lives that long).
#
# State: <lab state dir>/pebble/{bin,config.json,pebble.log,challtestsrv.log,*.pid,root.pem}.
set -euo pipefail

readonly VERSION=v2.10.3
readonly MODULE=github.com/letsencrypt/pebble/v2
LAB_ID=${BAKERY_TESTNODES_LAB:-0}
[[ $LAB_ID =~ ^[0-9]$ ]] || { echo "pebble: BAKERY_TESTNODES_LAB must be 0..9" >&2; exit 2; }
SFX=
((LAB_ID == 0)) || SFX=$LAB_ID
STATE=${BAKERY_TESTNODES:-/var/tmp/bakery-testnodes${SFX:+-$SFX}}
DIR=$STATE/pebble
BRIDGE_IP=10.77.$LAB_ID.1
if [[ -f $STATE/nodes.json ]]; then
	b=$(sed -n 's/.*"bridgeAddress": *"\([0-9.]*\)".*/\1/p' "$STATE/nodes.json" | head -n 1)
	[[ -n $b ]] && BRIDGE_IP=$b
fi
SCRIPTS_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
VALIDITY=${PEBBLE_VALIDITY:-7776000}
[[ $VALIDITY =~ ^[0-9]+$ ]] || { echo "pebble: PEBBLE_VALIDITY must be a number of seconds" >&2; exit 2; }

log() { printf 'pebble: %s\n' "$*" >&2; }
die() { printf 'pebble: ERROR: %s\n' "$*" >&2; exit 1; }

alive() { # PIDFILE
	local pid
	[[ -f $1 ]] || return 1
	pid=$(cat "$1")
	[[ -n $pid && -d /proc/$pid ]] || return 1
	[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

install_bins() {
	mkdir -p "$DIR/bin"
	if [[ -x $DIR/bin/pebble && -x $DIR/bin/pebble-challtestsrv && -f $DIR/bin/.version && $(cat "$DIR/bin/.version") == "$VERSION" ]]; then
		return 0
	fi
	log "go install $MODULE/cmd/pebble{,-challtestsrv}@$VERSION"
	GOBIN=$DIR/bin GOFLAGS=-mod=mod go install "$MODULE/cmd/pebble@$VERSION" "$MODULE/cmd/pebble-challtestsrv@$VERSION" ||
		die "go install of Pebble failed (needs the Go module proxy)"
	echo "$VERSION" >"$DIR/bin/.version"
}

moddir() {
	local d
	d=$(go env GOMODCACHE)/github.com/letsencrypt/pebble/v2@$VERSION
	if [[ ! -d $d/test/certs ]]; then
		GOFLAGS=-mod=mod go mod download "$MODULE@$VERSION" >/dev/null || die "go mod download $MODULE@$VERSION failed"
	fi
	[[ -f $d/test/certs/pebble.minica.pem ]] || die "Pebble's test certificates not found in $d"
	echo "$d"
}

stop() {
	local f pid
	for f in "$DIR/pebble.pid" "$DIR/challtestsrv.pid"; do
		if alive "$f"; then
			pid=$(cat "$f")
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do alive "$f" || break; sleep 0.1; done
			if alive "$f"; then kill -9 "$pid" 2>/dev/null || true; fi
		fi
		rm -f "$f"
	done
}

wait_port() { # PORT WHAT
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/$BRIDGE_IP/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	die "$2 does not listen on $BRIDGE_IP:$1 (log: $DIR)"
}

up() {
	[[ $(ip -4 -o addr show 2>/dev/null) == *"inet $BRIDGE_IP/"* ]] || die "no interface has $BRIDGE_IP: start the lab first (scripts/testnodes.sh up N)"
	install_bins
	local md
	md=$(moddir)
	stop
	cat >"$DIR/config.json" <<EOF
{
  "pebble": {
    "listenAddress": "$BRIDGE_IP:14000",
    "managementListenAddress": "$BRIDGE_IP:15000",
    "certificate": "$md/test/certs/localhost/cert.pem",
    "privateKey": "$md/test/certs/localhost/key.pem",
    "httpPort": 80,
    "tlsPort": 443,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "retryAfter": {"authz": 1, "order": 1},
    "profiles": {"default": {"description": "Bakery tests: one profile", "validityPeriod": $VALIDITY}}
  }
}
EOF
	cp "$md/test/certs/pebble.minica.pem" "$DIR/pebble.minica.pem"
	# -defaultIPv6 "": otherwise every AAAA answer is ::1 and Pebble validates against
	# the host's own loopback.
	setsid "$DIR/bin/pebble-challtestsrv" -defaultIPv4 "" -defaultIPv6 "" \
		-dnsserver "$BRIDGE_IP:8053" -management "$BRIDGE_IP:8055" \
		-http01 "" -https01 "" -tlsalpn01 "" -doh "" >"$DIR/challtestsrv.log" 2>&1 </dev/null &
	echo $! >"$DIR/challtestsrv.pid"
	wait_port 8055 challtestsrv
	# No sleeps before validation, no nonces rejected on purpose (certbot would fail a
	# run now and then), every order validated afresh.
	# Only the daemon itself goes to the background, with every descriptor redirected:
	# a backgrounded "cd && …" list would be a subshell holding the caller's stdout
	# (a caller reading it to EOF, such as Go's CombinedOutput, would wait forever).
	(
		cd "$DIR" || exit 1
		PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
			setsid "$DIR/bin/pebble" -config "$DIR/config.json" -dnsserver "$BRIDGE_IP:8053" \
			>"$DIR/pebble.log" 2>&1 </dev/null &
		echo $! >"$DIR/pebble.pid"
	) </dev/null >/dev/null 2>&1 || die "cannot start pebble in $DIR"
	wait_port 14000 pebble
	wait_port 15000 "pebble management"
	fetch_root >/dev/null
	log "up on $BRIDGE_IP: ACME directory https://pebble:14000/dir (validity ${VALIDITY}s)"
}

fetch_root() {
	curl -fsS --cacert "$DIR/pebble.minica.pem" --resolve "pebble:15000:$BRIDGE_IP" \
		https://pebble:15000/roots/0 -o "$DIR/root.pem.tmp" || die "cannot fetch Pebble's issuing root"
	mv "$DIR/root.pem.tmp" "$DIR/root.pem"
	cat "$DIR/root.pem"
}

add_a() { # HOST IP
	[[ $1 =~ ^[a-z0-9.-]+$ && $2 =~ ^[0-9.]+$ ]] || die "add-a HOST IP"
	curl -fsS -X POST "http://$BRIDGE_IP:8055/add-a" -d "{\"host\":\"$1.\",\"addresses\":[\"$2\"]}" >/dev/null ||
		die "challtestsrv refused the A record for $1"
}

clear_a() { # HOST
	[[ $1 =~ ^[a-z0-9.-]+$ ]] || die "clear-a HOST"
	curl -fsS -X POST "http://$BRIDGE_IP:8055/clear-a" -d "{\"host\":\"$1.\"}" >/dev/null ||
		die "challtestsrv refused to clear the A record of $1"
}

trust() { # NODE
	[[ $1 =~ ^node[0-9]+$ ]] || die "trust NODE (node1, node2, ...)"
	local pem
	pem=$(cat "$DIR/pebble.minica.pem")
	BAKERY_TESTNODES_LAB=$LAB_ID bash "${BAKERY_TESTNODES_SCRIPT:-$SCRIPTS_DIR/testnodes.sh}" exec "$1" sh -c "
set -e
printf '%s\n' '$pem' > /usr/local/share/ca-certificates/bakery-test-pebble.crt
update-ca-certificates >/dev/null 2>&1
grep -q ' pebble\$' /etc/hosts && sed -i '/ pebble\$/d' /etc/hosts
echo '$BRIDGE_IP pebble' >> /etc/hosts
"
}

case ${1:-} in
up) up ;;
down) stop; log "stopped" ;;
status) if alive "$DIR/pebble.pid" && alive "$DIR/challtestsrv.pid"; then echo running; else echo stopped; exit 1; fi ;;
add-a) [[ $# -eq 3 ]] || die "add-a HOST IP"; add_a "$2" "$3" ;;
clear-a) [[ $# -eq 2 ]] || die "clear-a HOST"; clear_a "$2" ;;
trust) [[ $# -eq 2 ]] || die "trust NODE"; trust "$2" ;;
root) fetch_root ;;
env)
	echo "PEBBLE_DIR=$DIR"
	echo "PEBBLE_ROOT=$DIR/root.pem"
	echo "PEBBLE_CA=$DIR/pebble.minica.pem"
	echo "ACME_SERVER=https://pebble:14000/dir"
	;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
