#!/usr/bin/env bash
# testnodes.sh — real Bakery test nodes on this machine: Debian bookworm roots booted with
# systemd as PID 1 by systemd-nspawn, each in its own network namespace on a host bridge,
# reachable only from the host over SSH as bakery-agent (set up by install-node-agent.sh).
# docs/testnodes.md holds the measured facts this follows (pitfall N: its list). Run as root.
# Every node also runs a docker engine (docker.io from the installer, bakery-agent in the
# docker group; /var/lib/docker on the host's ext4 under the node's state dir) with the
# image bakery-busybox:latest imported (a busybox-static root: nodes reach no registry).
#
# Usage:
#   testnodes.sh up N                 (re)create N fresh nodes node1..nodeN and wait until all
#                                     answer `ssh bakery-agent@IP echo bakery-ready`
#   testnodes.sh down [--purge]       power all nodes off, remove overlays/netns/veths/bridge
#                                     (works after a failed or partial up); --purge also deletes
#                                     the state dir (control-plane key) — the root cache stays
#   testnodes.sh status               one line per node: name ip running|stopped ssh-ok|ssh-fail
#   testnodes.sh ssh NODE [CMD...]    ssh to NODE as bakery-agent (strict host key checking)
#   testnodes.sh exec NODE CMD...     run CMD as root inside NODE (nsenter into the booted node)
#   testnodes.sh stop NODE            orderly poweroff of NODE, keeping its state
#   testnodes.sh start NODE           boot NODE again (state kept) and wait until SSH works
#   testnodes.sh rotate-hostkey NODE  give NODE a new sshd host key WITHOUT re-pinning it
#                                     (known_hosts/nodes.json keep the old one → mismatch);
#                                     prints the new public key
#   testnodes.sh trust-hostkey NODE   re-pin NODE's current host key in known_hosts/nodes.json
#   testnodes.sh add                  boot one extra private "scratch" node (node41..node80, not
#                                     listed in nodes.json "nodes"), print its JSON description
#   testnodes.sh remove NODE          power off and delete a scratch node
#   testnodes.sh build                only build (or reuse) the cached node root
#   testnodes.sh check-installer NODE re-run install-node-agent.sh inside booted NODE (offline)
#                                     and verify it changes nothing
#
# Environment: BAKERY_TESTNODES (state dir, default /var/tmp/bakery-testnodes),
# BAKERY_TESTNODES_CACHE (default /var/cache/bakery-testnodes),
# BAKERY_TESTNODES_BOOT_TIMEOUT (seconds per node, default 90),
# BAKERY_TESTNODES_LAB (0..9, default 0): a separate lab with its own bridge bakerybrN,
# subnet 10.77.N.0/24, namespaces and state dir (/var/tmp/bakery-testnodes-N), so that
# several checkouts can run end-to-end tests at the same time. Lab 0 keeps the plain names.
#
# State dir: id_ed25519{,.pub} (the test control plane's key; kept by `down`), known_hosts,
# nodes.json (read by the Go package bakery.dev/bakery/scripts/testnodes), nodes/<node>/
# {upper,work,merged,boot.log,supervisor.pid,host_key.pub,...}.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
SCRIPTS_DIR=$(dirname "$SCRIPT")
INSTALLER=$SCRIPTS_DIR/install-node-agent.sh
LAB_ID=${BAKERY_TESTNODES_LAB:-0}
[[ $LAB_ID =~ ^[0-9]$ ]] || { echo "testnodes: BAKERY_TESTNODES_LAB must be 0..9" >&2; exit 2; }
SFX= # name suffix of everything a lab other than 0 creates
((LAB_ID == 0)) || SFX=$LAB_ID
STATE=${BAKERY_TESTNODES:-/var/tmp/bakery-testnodes${SFX:+-$SFX}}
CACHE=${BAKERY_TESTNODES_CACHE:-/var/cache/bakery-testnodes}
BOOT_TIMEOUT=${BAKERY_TESTNODES_BOOT_TIMEOUT:-90}
BRIDGE=bakerybr$LAB_ID
NET_PREFIX=10.77.$LAB_ID
BRIDGE_IP=$NET_PREFIX.1
LAB=bakery-testnodes$SFX # cgroup directory name
SUITE=bookworm
MAX_NODES=80
# Bump when the build recipe below changes in a way that must rebuild the root.
RECIPE=5
INCLUDE=systemd,systemd-sysv,dbus,openssh-server,sudo,git,curl,nginx-light,iproute2,ca-certificates,procps,nodejs,busybox,python3
KEY=$STATE/id_ed25519
KNOWN_HOSTS=$STATE/known_hosts

log() { printf 'testnodes: %s\n' "$*" >&2; }
die() { printf 'testnodes: ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

usage() { sed -n '9,34p' "$SCRIPT" | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------- names

node_index() { # node3 -> 3
	[[ $1 =~ ^node([1-9][0-9]?)$ ]] || die "invalid node name '$1' (want node1..node$MAX_NODES)"
	local i=${BASH_REMATCH[1]}
	((i <= MAX_NODES)) || die "node index $i > $MAX_NODES"
	echo "$i"
}
node_ip() { echo "$NET_PREFIX.$((10 + $1))"; }
node_mac() { printf '02:77:%02x:00:00:%02x' "$LAB_ID" $((10 + $1)); }
node_netns() { echo "bn$SFX-$1"; }
node_veth() { echo "bnv$SFX-$1"; }
node_dir() { echo "$STATE/nodes/$1"; }

# ---------------------------------------------------------------- host prerequisites

ensure_host_tools() {
	[[ $(id -u) == 0 ]] || die "must run as root"
	local -A need=(
		[systemd-nspawn]=systemd-container [mmdebstrap]=mmdebstrap [ip]=iproute2
		[ssh]=openssh-client [ssh-keygen]=openssh-client [nsenter]=util-linux
		[flock]=util-linux [zstd]=zstd [ps]=procps [sha256sum]=coreutils
	)
	local missing=() cmd
	for cmd in "${!need[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
	done
	[[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
	((${#missing[@]})) || return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	log "installing host tools: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	# --no-install-recommends: systemd-container recommends libnss-mymachines, which would
	# rewrite the host's /etc/nsswitch.conf (docs/testnodes.md, pitfall 6).
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

modprobe_quiet() { modprobe "$1" 2>/dev/null || true; }

# ---------------------------------------------------------------- control-plane key

ensure_key() {
	mkdir -p "$STATE"
	chmod 700 "$STATE"
	if [[ ! -f $KEY || ! -f $KEY.pub ]]; then
		rm -f "$KEY" "$KEY.pub"
		ssh-keygen -q -t ed25519 -N '' -C bakery-testnodes-control-plane -f "$KEY"
		log "generated control-plane key $KEY"
	fi
}

# ---------------------------------------------------------------- node root (template)

mirror_sources() {
	# The host's own apt mirror (deb822). Fall back to a generated one with the same URIs.
	local f=/etc/apt/sources.list.d/debian.sources
	if [[ -r $f ]] && grep -q "$SUITE" "$f"; then
		echo "$f"
		return
	fi
	die "cannot find the host's Debian mirror in $f"
}

root_hash() {
	{
		echo "recipe=$RECIPE include=$INCLUDE suite=$SUITE"
		cat "$INSTALLER"
		cat "$KEY.pub"
		cat "$(mirror_sources)"
	} | sha256sum | cut -c1-16
}

# build_root — prints the path of the (cached) node root directory.
build_root() {
	[[ -r $INSTALLER ]] || die "installer not found: $INSTALLER"
	local hash root tmp t0 sources debcache
	hash=$(root_hash)
	root=$CACHE/root-$hash
	if [[ -f $root/.bakery-root-complete ]]; then
		echo "$root"
		return
	fi
	mkdir -p "$CACHE"
	exec 8>"$CACHE/.build.lock"
	flock 8
	if [[ -f $root/.bakery-root-complete ]]; then echo "$root"; return; fi
	sources=$(mirror_sources)
	debcache=$CACHE/debs
	mkdir -p "$debcache"
	tmp=$CACHE/.build-$hash
	rm -rf "$tmp"
	cp "$INSTALLER" "$CACHE/.installer-$hash.sh"
	cp "$KEY.pub" "$CACHE/.key-$hash.pub"
	t0=$(now)
	log "building node root $root (mmdebstrap $SUITE + install-node-agent.sh in a chroot); log: $CACHE/build-$hash.log"
	# The installer runs from a pipe into `bash -s` inside the chroot, with the host's network
	# for apt, exactly as a user would run it. mmdebstrap keeps policy-rc.d in place during
	# customize hooks, so no daemon starts in the chroot. Downloaded .debs are kept in
	# $debcache to make rebuilds (installer changes) cheaper.
	if ! mmdebstrap --mode=root --variant=minbase --include="$INCLUDE" \
		--skip=essential/unlink \
		--dpkgopt=force-unsafe-io --dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/info/*' --aptopt='Acquire::Languages "none"' \
		--setup-hook="mkdir -p \"\$1\"/var/cache/apt/archives && cp -a '$debcache'/. \"\$1\"/var/cache/apt/archives/" \
		--customize-hook="copy-in '$CACHE/.key-$hash.pub' /root" \
		--customize-hook="cat '$CACHE/.installer-$hash.sh' | chroot \"\$1\" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 bash -s -- --key \"\$(cat \"\$1\"/root/.key-$hash.pub)\" | tee '$CACHE/installer-$hash.log' >&2 && test \"\$(tail -n 1 '$CACHE/installer-$hash.log')\" = bakery-ready" \
		--customize-hook="cp -a \"\$1\"/var/cache/apt/archives/*.deb '$debcache'/ 2>/dev/null || true" \
		--customize-hook="$(base_image_hook)" \
		--customize-hook="rm -f \"\$1\"/root/.key-$hash.pub \"\$1\"/etc/ssh/ssh_host_* \"\$1\"/var/cache/apt/archives/*.deb && rm -rf \"\$1\"/var/lib/apt/lists/* && : > \"\$1\"/etc/resolv.conf" \
		--customize-hook="chroot \"\$1\" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer certbot.timer fstrim.timer man-db.timer systemd-networkd-wait-online.service >/dev/null 2>&1 || true" \
		"$SUITE" "$tmp" "$sources" >"$CACHE/build-$hash.log" 2>&1; then
		tail -n 40 "$CACHE/build-$hash.log" >&2
		rm -rf "$tmp"
		die "building the node root failed (full log: $CACHE/build-$hash.log)"
	fi
	rm -f "$CACHE/.installer-$hash.sh" "$CACHE/.key-$hash.pub"
	# nodes get their own sshd host key and an explicit HostKey line (no rsa/ecdsa warnings)
	mkdir -p "$tmp/etc/ssh/sshd_config.d"
	echo "HostKey /etc/ssh/ssh_host_ed25519_key" >"$tmp/etc/ssh/sshd_config.d/00-testnode.conf"
	touch "$tmp/.bakery-root-complete"
	mv "$tmp" "$root"
	log "node root built in $(elapsed "$t0") s ($(du -sh "$root" | cut -f1))"
	echo "build_seconds=$(elapsed "$t0")" >"$root/.bakery-build-info"
	prune_roots "$root"
	echo "$root"
}

# The base image docker apps on test nodes build FROM (the nodes reach no registry): a
# rootfs of Debian's busybox-static (one static binary and its applet links), made while
# the root is built and kept in it as a tar; `up` imports it into each node's docker as
# BASE_IMAGE. Printed as an mmdebstrap customize hook ($1 = the root).
BASE_IMAGE=bakery-busybox:latest
BASE_TAR=/usr/local/share/bakery-testnodes/busybox-rootfs.tar
base_image_hook() {
	cat <<HOOK
chroot "\$1" sh -ec 'cd /tmp && rm -rf bb bbimg busybox-static_*.deb
apt-get download -q busybox-static >/dev/null
dpkg-deb -x busybox-static_*.deb bb
mkdir -p bbimg/bin bbimg/etc bbimg/tmp bbimg/root bbimg/proc bbimg/sys bbimg/dev
cp bb/bin/busybox bbimg/bin/busybox
for a in \$(bbimg/bin/busybox --list); do [ "\$a" = busybox ] || ln -s busybox "bbimg/bin/\$a"; done
chmod 1777 bbimg/tmp
printf "root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534:nobody:/:/bin/false\\n" >bbimg/etc/passwd
printf "root:x:0:\\nnogroup:x:65534:\\n" >bbimg/etc/group
mkdir -p $(dirname "$BASE_TAR")
tar -C bbimg --numeric-owner -cf $BASE_TAR .
rm -rf bb bbimg busybox-static_*.deb'
HOOK
}

# import_base_image PID — wait for the node's dockerd and import BASE_TAR as BASE_IMAGE.
import_base_image() {
	local pid=$1 k
	for ((k = 0; k < 300; k++)); do
		in_node "$pid" docker info >/dev/null 2>&1 && break
		sleep 0.1
	done
	in_node "$pid" docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
	in_node "$pid" docker import -c 'ENV PATH=/bin' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
}

prune_roots() { # remove older roots that no mounted overlay uses (and no other lab just built)
	local keep=$1 r
	for r in "$CACHE"/root-*; do
		[[ -d $r && $r != "$keep" ]] || continue
		grep -qF "lowerdir=$r," /proc/mounts && continue
		[[ -n $(find "$r" -maxdepth 0 -mmin -720) ]] && continue
		log "removing old node root $r"
		rm -rf "$r" "$CACHE/build-${r##*/root-}.log" "$CACHE/installer-${r##*/root-}.log"
	done
}

# ---------------------------------------------------------------- network

ensure_bridge() {
	modprobe_quiet bridge
	modprobe_quiet veth
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
		ip link set "$BRIDGE" address "$(printf '02:77:%02x:00:00:01' "$LAB_ID")"
	fi
	ip addr replace "$BRIDGE_IP/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
}

ensure_node_net() { # index
	local i=$1 ns veth ip mac
	ns=$(node_netns "$i") veth=$(node_veth "$i") ip=$(node_ip "$i") mac=$(node_mac "$i")
	# /run may survive a machine restart here (not tmpfs): a leftover file that is no longer
	# a mounted namespace must go.
	if [[ -e /run/netns/$ns ]] && ! grep -q " /run/netns/$ns " /proc/mounts; then
		ip netns del "$ns" 2>/dev/null || rm -f "/run/netns/$ns"
	fi
	[[ -e /run/netns/$ns ]] || ip netns add "$ns"
	if ! ip link show "$veth" >/dev/null 2>&1; then
		ip -n "$ns" link del eth0 2>/dev/null || true
		ip link add "$veth" type veth peer name eth0 netns "$ns"
		ip link set "$veth" address "$(printf '02:77:%02x:00:01:%02x' "$LAB_ID" $((10 + i)))"
	fi
	ip link set "$veth" master "$BRIDGE" up
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 address "$mac"
	ip -n "$ns" addr replace "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
	# A stale ARP entry for a re-created node made the first SSH take 27 s (pitfall 5).
	ip neigh flush to "$ip" dev "$BRIDGE" 2>/dev/null || true
}

remove_node_net() { # index
	local i=$1
	ip link del "$(node_veth "$i")" 2>/dev/null || true
	ip netns del "$(node_netns "$i")" 2>/dev/null || true
	ip neigh flush to "$(node_ip "$i")" 2>/dev/null || true
}

# ---------------------------------------------------------------- cgroups

# Directories (one per mounted hierarchy we must care about) for a node's cgroup.
cgroup_dirs() { # node
	if [[ -d /sys/fs/cgroup/unified && -f /sys/fs/cgroup/unified/cgroup.procs ]]; then
		# hybrid: name=systemd v1 hierarchy + cgroup2 at unified/
		echo "/sys/fs/cgroup/systemd/$LAB/$1"
		echo "/sys/fs/cgroup/unified/$LAB/$1"
	elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
		echo "/sys/fs/cgroup/$LAB/$1" # pure cgroup2
	elif [[ -d /sys/fs/cgroup/systemd ]]; then
		echo "/sys/fs/cgroup/systemd/$LAB/$1" # legacy v1
	else
		die "no usable cgroup hierarchy under /sys/fs/cgroup"
	fi
}

cgroup_pids() { # node — every pid in the node's cgroups (recursively)
	local d
	for d in $(cgroup_dirs "$1"); do
		[[ -d $d ]] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}

remove_cgroups() { # node
	local d
	for d in $(cgroup_dirs "$1"); do
		if [[ -d $d ]]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
	done
}

# ---------------------------------------------------------------- processes

alive() { # pid — alive and not a zombie (pitfall 8)
	local st
	[[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

supervisor_pid() { # node — pid of the node's supervisor shell if alive
	local f
	f=$(node_dir "$1")/supervisor.pid
	[[ -f $f ]] || return 1
	local pid
	pid=$(<"$f")
	alive "$pid" || return 1
	grep -q "bakery-testnodes-supervisor" "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

leader_pid() { # node — PID 1 of the booted node, seen from the host
	local sup nsp pid
	sup=$(supervisor_pid "$1") || return 1
	for nsp in $(ps -o pid= --ppid "$sup"); do
		for pid in $(ps -o pid= --ppid "$nsp"); do
			alive "$pid" && { echo "$pid"; return 0; }
		done
	done
	return 1
}

# ---------------------------------------------------------------- one node

write_node_files() { # node index — per-node identity into the node's upper layer
	local name=$1 i=$2 d merged
	d=$(node_dir "$name")
	merged=$d/merged
	echo "$name" >"$merged/etc/hostname"
	cat >"$merged/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$name
$(node_ip "$i")	$name
$BRIDGE_IP	bakery-host
::1	localhost ip6-localhost ip6-loopback
EOF
	local n
	for n in $(seq 1 "$(cat "$STATE/count" 2>/dev/null || echo 0)"); do
		[[ $n == "$i" ]] || echo "$(node_ip "$n")	node$n" >>"$merged/etc/hosts"
	done
}

new_host_key() { # node — fresh sshd host key into the node's root; prints the public key
	local d merged
	d=$(node_dir "$1")
	merged=$d/merged
	rm -f "$d/hk" "$d/hk.pub"
	ssh-keygen -q -t ed25519 -N '' -C "root@$1" -f "$d/hk"
	install -m 600 -o root -g root "$d/hk" "$merged/etc/ssh/ssh_host_ed25519_key"
	install -m 644 -o root -g root "$d/hk.pub" "$merged/etc/ssh/ssh_host_ed25519_key.pub"
	rm -f "$d/hk"
	awk '{print $1" "$2}' "$d/hk.pub"
	rm -f "$d/hk.pub"
}

pin_host_key() { # node pubkey
	printf '%s\n' "$2" >"$(node_dir "$1")/host_key.pub"
}

mount_node() { # node root
	local d
	d=$(node_dir "$1")
	mkdir -p "$d/upper" "$d/work" "$d/merged" "$d/docker"
	mountpoint -q "$d/merged" ||
		mount -t overlay overlay -o "lowerdir=$2,upperdir=$d/upper,workdir=$d/work" "$d/merged"
}

launch_node() { # node index
	local name=$1 i=$2 d
	d=$(node_dir "$name")
	supervisor_pid "$name" >/dev/null && return 0
	local cg
	for cg in $(cgroup_dirs "$name"); do mkdir -p "$cg"; done
	: >"$d/boot.log"
	rm -f "$d/exit-status" "$d/supervisor.pid"
	# The supervisor moves itself into the node's own cgroups (pitfall 2: nspawn
	# --keep-unit creates payload/ and supervisor/ under the caller's cgroup), runs nspawn,
	# restarts it after an in-node reboot (exit 133, pitfall 7) and forwards SIGTERM
	# (= orderly poweroff of the node).
	# The supervisor's script is single-quoted on purpose: it expands its own variables.
	# shellcheck disable=SC2016
	CGROUPS=$(cgroup_dirs "$name" | tr '\n' ' ') setsid bash -c '
		name=$1 dir=$2 ns=$3; shift 3
		for cg in $CGROUPS; do
			echo $$ >"$cg/cgroup.procs" || { echo "testnodes: cannot join cgroup $cg" >&2; exit 1; }
		done
		echo $$ >"$dir/supervisor.pid"
		stop=0 child=
		trap '"'"'stop=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null'"'"' TERM INT
		while :; do
			# Docker inside the node (docs/testnodes.md): a writable cgroup2 tree, CAP_NET_ADMIN
			# and a writable /proc/sys/net (--private-network, still in our namespace), the
			# syscalls runc needs, and /var/lib/docker on the host ext4 (overlay2 does not
			# work on the node overlay root).
			SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --boot --keep-unit --register=no --directory="$dir/merged" \
				--machine="$name" --private-network --network-namespace-path="/run/netns/$ns" \
				--system-call-filter=@keyring --system-call-filter=bpf --bind="$dir/docker:/var/lib/docker" \
				--console=read-only --link-journal=no --resolv-conf=off --timezone=off &
			child=$!
			while :; do
				rc=0; wait "$child" || rc=$?
				kill -0 "$child" 2>/dev/null || break
			done
			child=
			echo "nspawn exited $rc" >&2
			if [ "$rc" = 133 ] && [ "$stop" = 0 ]; then echo "reboot: starting again" >&2; continue; fi
			break
		done
		echo "$rc" >"$dir/exit-status"
	' bakery-testnodes-supervisor "$name" "$d" "$(node_netns "$i")" \
		</dev/null >>"$d/boot.log" 2>&1 8>&- 9>&- &
	local k
	for ((k = 0; k < 100; k++)); do [[ -s $d/supervisor.pid ]] && return 0; sleep 0.02; done
	die "$name: supervisor did not start (see $d/boot.log)"
}

ssh_opts() {
	echo -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentityAgent=none -o "UserKnownHostsFile=$KNOWN_HOSTS" \
		-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o IdentityFile="$KEY" \
		-o ConnectTimeout=3 -o LogLevel=ERROR -o ControlMaster=no -o ControlPath=none
}

wait_ready() { # node index
	local name=$1 i=$2 ip deadline out
	ip=$(node_ip "$i")
	deadline=$(($(date +%s) + BOOT_TIMEOUT))
	while :; do
		if ! supervisor_pid "$name" >/dev/null; then
			tail -n 30 "$(node_dir "$name")/boot.log" >&2
			die "$name: systemd-nspawn exited during boot (boot log above: $(node_dir "$name")/boot.log)"
		fi
		if timeout 1 bash -c "exec 3<>/dev/tcp/$ip/22" 2>/dev/null; then
			# shellcheck disable=SC2046
			out=$(ssh $(ssh_opts) "bakery-agent@$ip" echo bakery-ready 2>&1 </dev/null) || true
			[[ $out == bakery-ready ]] && return 0
		fi
		if (($(date +%s) >= deadline)); then
			log "$name: last ssh output: ${out:-<port 22 closed>}"
			tail -n 30 "$(node_dir "$name")/boot.log" >&2
			die "$name ($ip) not reachable over SSH after ${BOOT_TIMEOUT}s (boot log: $(node_dir "$name")/boot.log)"
		fi
		sleep 0.1
	done
}

poweroff_node() { # node — orderly poweroff, then force after a timeout
	local name=$1 sup pid i
	sup=$(supervisor_pid "$name") || sup=
	if [[ -n $sup ]]; then
		kill -TERM "$sup" 2>/dev/null || true
		for ((i = 0; i < 200; i++)); do alive "$sup" || break; sleep 0.1; done
	fi
	# anything left in the node's cgroups (failed/partial up, hung poweroff): kill it
	for pid in $(cgroup_pids "$name"); do kill -KILL "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 50; i++)); do [[ -z $(cgroup_pids "$name") ]] && break; sleep 0.1; done
	rm -f "$(node_dir "$name")/supervisor.pid"
}

# ---------------------------------------------------------------- lab files

write_known_hosts() {
	local f name i tmp
	tmp=$(mktemp "$STATE/.known_hosts.XXXXXX")
	for f in "$STATE"/nodes/node*/host_key.pub; do
		[[ -f $f ]] || continue
		name=$(basename "$(dirname "$f")")
		i=$(node_index "$name")
		echo "$(node_ip "$i") $(cat "$f")" >>"$tmp"
	done
	chmod 644 "$tmp"
	mv -f "$tmp" "$KNOWN_HOSTS"
}

write_nodes_json() {
	local tmp f name i sep=""
	tmp=$(mktemp "$STATE/.nodes.json.XXXXXX")
	{
		printf '{\n  "stateDir": "%s",\n  "script": "%s",\n  "bridgeAddress": "%s",\n' "$STATE" "$SCRIPT" "$BRIDGE_IP"
		printf '  "privateKey": "%s",\n  "publicKey": "%s",\n  "knownHosts": "%s",\n  "nodes": [' \
			"$KEY" "$(awk '{print $1" "$2}' "$KEY.pub")" "$KNOWN_HOSTS"
		for ((i = 1; i <= $(cat "$STATE/count" 2>/dev/null || echo 0); i++)); do
			name=node$i
			f=$STATE/nodes/$name/host_key.pub
			[[ -f $f ]] || continue
			printf '%s\n    {"name": "%s", "address": "%s", "port": 22, "user": "bakery-agent", "privateKey": "%s", "knownHosts": "%s", "hostKey": "%s"}' \
				"$sep" "$name" "$(node_ip "$i")" "$KEY" "$KNOWN_HOSTS" "$(cat "$f")"
			sep=,
		done
		printf '\n  ]\n}\n'
	} >"$tmp"
	chmod 644 "$tmp"
	mv -f "$tmp" "$STATE/nodes.json"
}

lock_state() {
	mkdir -p "$STATE"
	exec 9>"$STATE/.lock"
	flock 9
}

# ---------------------------------------------------------------- commands

cmd_down() {
	local purge=0
	[[ ${1:-} == --purge ]] && purge=1
	lock_state
	local t0 d name i
	t0=$(now)
	# power off every node in parallel
	local pids=()
	for d in "$STATE"/nodes/node*; do
		[[ -d $d ]] || continue
		poweroff_node "$(basename "$d")" &
		pids+=($!)
	done
	((${#pids[@]} == 0)) || wait "${pids[@]}"
	for d in "$STATE"/nodes/node*; do
		[[ -d $d ]] || continue
		name=$(basename "$d")
		mountpoint -q "$d/merged" && { umount "$d/merged" 2>/dev/null || umount -l "$d/merged"; }
		remove_cgroups "$name"
		rm -rf "$d"
	done
	# leftovers of a partial up (netns/veths without a node dir)
	for d in /run/netns/bn"$SFX"-*; do
		[[ -e $d ]] || continue
		i=${d##*/bn"$SFX"-}
		remove_node_net "$i"
	done
	for d in /sys/class/net/bnv"$SFX"-*; do if [[ -e $d ]]; then ip link del "${d##*/}" 2>/dev/null; fi; done
	ip link del "$BRIDGE" 2>/dev/null || true
	for d in /sys/fs/cgroup/systemd/$LAB /sys/fs/cgroup/unified/$LAB /sys/fs/cgroup/$LAB; do
		if [[ -d $d ]]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
	done
	rm -f "$STATE/nodes.json" "$STATE/count" "$STATE/root" "$KNOWN_HOSTS"
	((purge)) && rm -rf "$STATE"
	log "down in $(elapsed "$t0") s"
}

cmd_up() {
	local n=${1:-}
	if ! { [[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= MAX_NODES)); }; then die "usage: testnodes.sh up N (1..$MAX_NODES)"; fi
	ensure_host_tools
	ensure_key
	local t0 root
	t0=$(now)
	root=$(build_root)
	cmd_down
	lock_state
	prune_roots "$root"
	echo "$root" >"$STATE/root"
	local t1 i name
	t1=$(now)
	ensure_bridge
	echo "$n" >"$STATE/count"
	for ((i = 1; i <= n; i++)); do
		name=node$i
		mkdir -p "$(node_dir "$name")"
		ensure_node_net "$i"
		mount_node "$name" "$root"
		write_node_files "$name" "$i"
		pin_host_key "$name" "$(new_host_key "$name")"
	done
	write_known_hosts
	write_nodes_json
	for ((i = 1; i <= n; i++)); do launch_node "node$i" "$i"; done
	for ((i = 1; i <= n; i++)); do wait_ready "node$i" "$i"; done
	log "$n node(s) answering SSH $(elapsed "$t1") s after launch"
	# Second run of the installer on every booted node: offline (nodes have no route out),
	# must change nothing.
	local rc=0 j pids=()
	for ((i = 1; i <= n; i++)); do check_installer "node$i" & pids+=($!); done
	for j in "${pids[@]}"; do wait "$j" || rc=1; done
	((rc == 0)) || die "installer re-run check failed"
	t1=$(now)
	pids=()
	for ((i = 1; i <= n; i++)); do import_base_image "$(leader_pid "node$i")" & pids+=($!); done
	for j in "${pids[@]}"; do wait "$j" || rc=1; done
	((rc == 0)) || die "importing the docker base image $BASE_IMAGE failed"
	log "docker base image $BASE_IMAGE imported on $n node(s) in $(elapsed "$t1") s"
	log "up $n done in $(elapsed "$t0") s; lab description: $STATE/nodes.json"
}

# Files the installer manages; a re-run must leave them byte-for-byte (and mode/owner) equal.
MANAGED='/usr/local/lib/bakery/bakery-sudo /etc/sudoers.d/bakery-agent /etc/ssh/sshd_config.d/bakery.conf
/home/bakery-agent/.ssh/authorized_keys /home/bakery-agent/.bashrc /home/bakery-agent/.profile
/etc/passwd /etc/group /etc/shadow /var/lib/dpkg/status'
MANAGED_DIRS='/home/bakery-agent /home/bakery-agent/.ssh /var/lib/bakery /var/log/bakery /usr/local/lib/bakery'

check_installer() { # node
	local name=$1 pid before after out
	pid=$(leader_pid "$name") || die "$name is not running"
	# Both lists on one line each: a newline would end the for loop's word list.
	local probe="for f in ${MANAGED//$'\n'/ }; do stat -c '%n %a %U:%G' \"\$f\"; sha256sum \"\$f\"; done; for d in ${MANAGED_DIRS//$'\n'/ }; do stat -c '%n %a %U:%G' \"\$d\"; done"
	before=$(in_node "$pid" sh -c "$probe")
	if ! out=$(in_node "$pid" bash -s -- --key "$(cat "$KEY.pub")" <"$INSTALLER" 2>&1); then
		printf '%s\n' "$out" >&2
		die "$name: installer re-run failed"
	fi
	after=$(in_node "$pid" sh -c "$probe")
	if [[ $(tail -n 1 <<<"$out") != bakery-ready ]]; then
		printf '%s\n' "$out" >&2
		die "$name: installer re-run did not end with bakery-ready"
	fi
	if ! grep -q 'done: 0 change(s)' <<<"$out" || [[ $before != "$after" ]]; then
		printf '%s\n' "$out" >&2
		diff <(echo "$before") <(echo "$after") >&2 || true
		die "$name: installer re-run changed the node"
	fi
	log "$name: installer re-run offline: no changes, bakery-ready"
}

in_node() { # pid CMD... — run as root inside the node's namespaces, clean environment
	local pid=$1
	shift
	nsenter --target "$pid" --mount --uts --ipc --net --pid --root --wd -- \
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}

need_node() { # node — must exist in the lab
	local i
	i=$(node_index "$1")
	[[ -d $(node_dir "$1") && -f $(node_dir "$1")/host_key.pub ]] || die "no such node in the lab: $1 (run: testnodes.sh up N)"
	echo "$i"
}

cmd_stop() {
	[[ $# == 1 ]] || die "usage: testnodes.sh stop NODE"
	need_node "$1" >/dev/null
	lock_state
	local t0
	t0=$(now)
	poweroff_node "$1"
	log "$1 stopped in $(elapsed "$t0") s"
}

cmd_start() {
	[[ $# == 1 ]] || die "usage: testnodes.sh start NODE"
	local i t0
	i=$(need_node "$1")
	lock_state
	t0=$(now)
	ensure_bridge
	ensure_node_net "$i"
	mountpoint -q "$(node_dir "$1")/merged" || die "$1: overlay not mounted (run up again)"
	launch_node "$1" "$i"
	wait_ready "$1" "$i"
	log "$1 started in $(elapsed "$t0") s"
}

cmd_rotate_hostkey() {
	[[ $# == 1 ]] || die "usage: testnodes.sh rotate-hostkey NODE"
	local pub pid
	need_node "$1" >/dev/null
	lock_state
	pub=$(new_host_key "$1")
	if pid=$(leader_pid "$1"); then
		# sshd reads host keys at start: restart it so new connections get the new key.
		in_node "$pid" systemctl restart ssh.service
	fi
	echo "$pub"
}

cmd_trust_hostkey() {
	[[ $# == 1 ]] || die "usage: testnodes.sh trust-hostkey NODE"
	need_node "$1" >/dev/null
	lock_state
	pin_host_key "$1" "$(awk '{print $1" "$2}' "$(node_dir "$1")/merged/etc/ssh/ssh_host_ed25519_key.pub")"
	write_known_hosts
	write_nodes_json
	cat "$(node_dir "$1")/host_key.pub"
}

# Scratch nodes (indexes 41..80) let a test power off or re-key a node without disturbing
# tests of other packages that run at the same time on the shared nodes.
SCRATCH_FIRST=41

node_json() { # node
	local i
	i=$(node_index "$1")
	printf '{"name": "%s", "address": "%s", "port": 22, "user": "bakery-agent", "privateKey": "%s", "knownHosts": "%s", "hostKey": "%s"}\n' \
		"$1" "$(node_ip "$i")" "$KEY" "$KNOWN_HOSTS" "$(cat "$(node_dir "$1")/host_key.pub")"
}

cmd_add() {
	[[ $# == 0 ]] || die "usage: testnodes.sh add"
	lock_state
	[[ -f $STATE/root && -f $STATE/nodes.json ]] || die "no lab (run: testnodes.sh up N first)"
	local root i name t0
	root=$(<"$STATE/root")
	[[ -d $root ]] || die "node root $root is gone (run up again)"
	t0=$(now)
	for ((i = SCRATCH_FIRST; i <= MAX_NODES; i++)); do
		[[ -e $(node_dir "node$i") ]] || break
	done
	((i <= MAX_NODES)) || die "no free scratch node index"
	name=node$i
	mkdir -p "$(node_dir "$name")"
	ensure_bridge
	ensure_node_net "$i"
	mount_node "$name" "$root"
	write_node_files "$name" "$i"
	pin_host_key "$name" "$(new_host_key "$name")"
	write_known_hosts
	launch_node "$name" "$i"
	wait_ready "$name" "$i"
	import_base_image "$(leader_pid "$name")" || die "$name: importing the docker base image failed"
	log "scratch node $name up in $(elapsed "$t0") s"
	node_json "$name"
}

cmd_remove() {
	[[ $# == 1 ]] || die "usage: testnodes.sh remove NODE"
	local i d
	i=$(need_node "$1")
	((i >= SCRATCH_FIRST)) || die "$1 is a shared lab node; only scratch nodes can be removed (use down)"
	lock_state
	d=$(node_dir "$1")
	poweroff_node "$1"
	mountpoint -q "$d/merged" && { umount "$d/merged" 2>/dev/null || umount -l "$d/merged"; }
	remove_cgroups "$1"
	remove_node_net "$i"
	rm -rf "$d"
	write_known_hosts
}

cmd_status() {
	local d name i state sshs
	[[ -f $STATE/nodes.json ]] || { echo "no lab (state dir $STATE)"; return 0; }
	for d in "$STATE"/nodes/node*; do
		[[ -d $d ]] || continue
		name=$(basename "$d")
		i=$(node_index "$name")
		if supervisor_pid "$name" >/dev/null; then state=running; else state=stopped; fi
		sshs=-
		if [[ $state == running ]]; then
			# shellcheck disable=SC2046
			if [[ $(ssh $(ssh_opts) "bakery-agent@$(node_ip "$i")" echo ok 2>/dev/null </dev/null) == ok ]]; then sshs=ssh-ok; else sshs=ssh-fail; fi
		fi
		printf '%s\t%s\t%s\t%s\n' "$name" "$(node_ip "$i")" "$state" "$sshs"
	done
}

cmd_ssh() {
	[[ $# -ge 1 ]] || die "usage: testnodes.sh ssh NODE [CMD...]"
	local i
	i=$(need_node "$1")
	shift
	# shellcheck disable=SC2046
	exec ssh $(ssh_opts) "bakery-agent@$(node_ip "$i")" "$@"
}

cmd_exec() {
	[[ $# -ge 2 ]] || die "usage: testnodes.sh exec NODE CMD..."
	local pid
	need_node "$1" >/dev/null
	pid=$(leader_pid "$1") || die "$1 is not running"
	shift
	in_node "$pid" "$@"
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	up) cmd_up "$@" ;;
	down) [[ $(id -u) == 0 ]] || die "must run as root"; cmd_down "$@" ;;
	status) cmd_status ;;
	ssh) cmd_ssh "$@" ;;
	exec) cmd_exec "$@" ;;
	stop) cmd_stop "$@" ;;
	start) cmd_start "$@" ;;
	rotate-hostkey) cmd_rotate_hostkey "$@" ;;
	trust-hostkey) cmd_trust_hostkey "$@" ;;
	add) cmd_add "$@" ;;
	remove) cmd_remove "$@" ;;
	build) ensure_host_tools; ensure_key; build_root ;;
	check-installer) [[ $# == 1 ]] || die "usage: testnodes.sh check-installer NODE"; need_node "$1" >/dev/null; check_installer "$1" ;;
	-h | --help | help) usage ;;
	*) usage >&2; exit 2 ;;
	esac
}

main "$@"
