#!/usr/bin/env bash
# install-node-agent.sh — prepare a fresh Debian/Ubuntu host to be a Bakery node.
#
# Usage (as root, typically piped from the control plane):
#   curl -fsSL https://<control-plane>/install-node-agent.sh \
#     | sudo bash -s -- --key "ssh-ed25519 AAAA... bakery"
#   sudo BAKERY_PUBLIC_KEY="ssh-ed25519 AAAA... bakery" bash install-node-agent.sh
#
# Options:
#   --key KEY            the control plane's SSH public key (or env BAKERY_PUBLIC_KEY)
#   --no-docker          do not install docker.io (default: install it)
#   --with-postgresql    also install the PostgreSQL server (client is always installed)
#   -h, --help           this text
#
# What it does (every step is idempotent; a second run changes nothing and,
# once all packages are present, needs no network):
#   * checks that the host is Debian or Ubuntu (/etc/os-release) and that the key is valid;
#   * installs, only if missing (dpkg-query): git curl nginx certbot python3-certbot-nginx
#     build-essential postgresql-client openssh-server sudo ca-certificates
#     [+ docker.io] [+ postgresql];
#   * creates the system user `bakery-agent` (shell /bin/bash, lean rc files, no password)
#     and puts the key into ~bakery-agent/.ssh/authorized_keys (700/600);
#   * writes the root-owned helper /usr/local/lib/bakery/bakery-sudo (the ONLY command
#     bakery-agent may run with sudo; see its header for the verbs) and the sudoers file
#     /etc/sudoers.d/bakery-agent (checked with `visudo -cf`, mode 0440);
#   * creates /var/lib/bakery (bakery-agent, 0755) and /var/log/bakery;
#   * adds /etc/ssh/sshd_config.d/bakery.conf (ClientAliveInterval 5, ClientAliveCountMax 3,
#     MaxSessions 20) and reloads sshd when systemd runs it (skipped in a chroot);
#   * prints `bakery-ready` as its last line.
#
# SECURITY NOTE — docker: unless --no-docker is given, bakery-agent is added to the
# `docker` group. Membership of the docker group is ROOT-EQUIVALENT (anyone in it can
# start a container that mounts / read-write). On such nodes the least-privilege sudo
# rules below do not bound what the control plane's key can do; use --no-docker for
# nodes that only run systemd-runtime apps.
set -euo pipefail

readonly AGENT_USER=bakery-agent
AGENT_HOME=/home/bakery-agent # the real home is read back from passwd after useradd
readonly HELPER=/usr/local/lib/bakery/bakery-sudo
readonly SUDOERS=/etc/sudoers.d/bakery-agent
readonly SSHD_DROPIN=/etc/ssh/sshd_config.d/bakery.conf

CHANGES=0

say()  { printf 'bakery-install: %s\n' "$*"; }
die()  { printf 'bakery-install: ERROR: %s\n' "$*" >&2; exit 1; }
note_change() { CHANGES=$((CHANGES + 1)); say "$*"; }

usage() {
	cat <<'EOF'
Usage: install-node-agent.sh --key "ssh-ed25519 AAAA... comment" [--no-docker] [--with-postgresql]
       (or env BAKERY_PUBLIC_KEY instead of --key); run as root on Debian/Ubuntu.
  --key KEY          the control plane's SSH public key for user bakery-agent
  --no-docker        do not install docker.io (default: install it and add bakery-agent
                     to the docker group, which is ROOT-EQUIVALENT)
  --with-postgresql  also install the PostgreSQL server
Prints "bakery-ready" as its last line on success. Safe to run again.
EOF
}

# put_file MODE OWNER:GROUP PATH — content from stdin. Writes atomically (temp file in the
# same directory + rename) and only when content, mode or owner differ.
put_file() {
	local mode=$1 owner=$2 path=$3 dir tmp
	dir=$(dirname "$path")
	tmp=$(mktemp "$dir/.bakery-install.XXXXXX")
	cat >"$tmp"
	if [[ -f $path && ! -L $path ]] && cmp -s "$tmp" "$path" &&
		[[ $(stat -c '%a %U:%G' "$path") == "$mode $owner" ]]; then
		rm -f "$tmp"
		return 0
	fi
	chmod "$mode" "$tmp"
	chown "$owner" "$tmp"
	mv -f "$tmp" "$path"
	note_change "wrote $path"
}

# ensure_dir MODE OWNER:GROUP PATH
ensure_dir() {
	local mode=$1 owner=$2 path=$3
	if [[ ! -d $path ]]; then
		mkdir -p "$path"
		note_change "created $path"
	fi
	if [[ $(stat -c '%a %U:%G' "$path") != "$mode $owner" ]]; then
		chmod "$mode" "$path"
		chown "$owner" "$path"
		note_change "set $mode $owner on $path"
	fi
}

systemd_running() {
	# systemd is PID 1 of *this* root (not a chroot inside a systemd host).
	[[ -d /run/systemd/system ]] || return 1
	if command -v systemd-detect-virt >/dev/null 2>&1 && systemd-detect-virt --quiet --chroot; then
		return 1
	fi
	return 0
}

check_os() {
	[[ -r /etc/os-release ]] || die "cannot read /etc/os-release: only Debian and Ubuntu are supported"
	local id
	# shellcheck source=/dev/null
	id=$(. /etc/os-release && printf '%s' "${ID:-}")
	# shellcheck source=/dev/null
	case $id in
	debian | ubuntu) say "OS: $(. /etc/os-release && printf '%s' "${PRETTY_NAME:-$id}")" ;;
	*) die "unsupported OS '${id:-unknown}' (from /etc/os-release): Bakery nodes must run Debian or Ubuntu" ;;
	esac
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found: Bakery nodes must run Debian or Ubuntu"
	command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found"
}

# check_key KEY — one OpenSSH public key line: TYPE BASE64 [COMMENT], no options, no newlines.
check_key() {
	local key=$1
	[[ -n $key ]] || die "no SSH public key given: use --key \"ssh-ed25519 AAAA... comment\" or env BAKERY_PUBLIC_KEY"
	[[ $key != *$'\n'* && $key != *$'\r'* ]] || die "the SSH public key must be a single line"
	local re='^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [[:print:]]*)?$'
	[[ $key =~ $re ]] || die "invalid SSH public key (expected 'ssh-ed25519 AAAA... comment', no options): ${key:0:60}"
	if command -v ssh-keygen >/dev/null 2>&1; then
		local tmp
		tmp=$(mktemp)
		printf '%s\n' "$key" >"$tmp"
		if ! ssh-keygen -l -f "$tmp" >/dev/null 2>&1; then
			rm -f "$tmp"
			die "invalid SSH public key (ssh-keygen cannot parse it): ${key:0:60}"
		fi
		rm -f "$tmp"
	fi
}

pkg_installed() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# install_packages SPEC... where SPEC is "pkg" or "pkg|alt1|alt2" (satisfied by any; the
# first is installed when none is).
install_packages() {
	local spec missing=() alt ok
	for spec in "$@"; do
		ok=0
		IFS='|' read -r -a alts <<<"$spec"
		for alt in "${alts[@]}"; do
			if pkg_installed "$alt"; then ok=1; break; fi
		done
		((ok)) || missing+=("${alts[0]}")
	done
	if ((${#missing[@]} == 0)); then
		say "packages: all present"
		return 0
	fi
	say "packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Error-Mode=any: a failed index download is an error, not a warning (apt >= 2.1; older
	# apt ignores the unknown option).
	apt-get update -q -o APT::Update::Error-Mode=any ||
		die "apt-get update failed (no network or mirror problem?); missing packages: ${missing[*]}"
	apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" || die "apt-get install failed for: ${missing[*]} (no network? on Ubuntu, certbot needs the 'universe' component)"
	note_change "installed ${missing[*]}"
}

ensure_user() {
	if ! getent passwd "$AGENT_USER" >/dev/null; then
		useradd --system --user-group --home-dir "$AGENT_HOME" --shell /bin/bash \
			--comment "Bakery deployment agent" "$AGENT_USER"
		note_change "created user $AGENT_USER"
	fi
	local shell
	AGENT_HOME=$(getent passwd "$AGENT_USER" | cut -d: -f6)
	[[ $AGENT_HOME == /* && $AGENT_HOME != / ]] || die "user $AGENT_USER has an unusable home directory '$AGENT_HOME'"
	shell=$(getent passwd "$AGENT_USER" | cut -d: -f7)
	if [[ $shell != /bin/bash ]]; then
		usermod --shell /bin/bash "$AGENT_USER"
		note_change "set shell of $AGENT_USER to /bin/bash"
	fi
	# '*' = no password login possible, but the account is not "locked" ('!'), which
	# sshd with UsePAM=no would refuse even for key logins.
	if [[ $(getent shadow "$AGENT_USER" | cut -d: -f2) != '*' ]]; then
		usermod --password '*' "$AGENT_USER"
		note_change "disabled password of $AGENT_USER"
	fi
	ensure_dir 755 "$AGENT_USER:$AGENT_USER" "$AGENT_HOME"
	# Lean shell start-up: every remote command starts a shell; keep it cheap.
	put_file 644 "$AGENT_USER:$AGENT_USER" "$AGENT_HOME/.bashrc" <<'EOF'
# Managed by Bakery's install-node-agent.sh. Kept lean on purpose: every remote
# command the control plane runs starts a shell that may read this file.
case $- in *i*) ;; *) return ;; esac
PS1='\u@\h:\w\$ '
EOF
	put_file 644 "$AGENT_USER:$AGENT_USER" "$AGENT_HOME/.profile" <<'EOF'
# Managed by Bakery's install-node-agent.sh (kept lean).
[ -n "$BASH_VERSION" ] && [ -f "$HOME/.bashrc" ] && . "$HOME/.bashrc"
EOF
}

ensure_authorized_key() {
	local key=$1 ak="$AGENT_HOME/.ssh/authorized_keys" want content=""
	ensure_dir 700 "$AGENT_USER:$AGENT_USER" "$AGENT_HOME/.ssh"
	want=$(awk '{print $1" "$2}' <<<"$key")
	[[ -f $ak ]] && content=$(cat "$ak")
	if ! awk '{print $1" "$2}' <<<"$content" | grep -qxF -- "$want"; then
		content=${content:+$content$'\n'}$key
	fi
	printf '%s\n' "$content" | put_file 600 "$AGENT_USER:$AGENT_USER" "$ak"
}

ensure_group_member() {
	local user=$1 group=$2
	getent group "$group" >/dev/null || die "group $group does not exist"
	if ! id -nG "$user" | tr ' ' '\n' | grep -qxF "$group"; then
		usermod -aG "$group" "$user"
		note_change "added $user to group $group"
	fi
}

write_helper() {
	ensure_dir 755 root:root /usr/local/lib/bakery
	put_file 755 root:root "$HELPER" <<'BAKERY_SUDO_EOF'
#!/bin/bash
# bakery-sudo — the one command the bakery-agent user may run as root (via
# /etc/sudoers.d/bakery-agent). Written by install-node-agent.sh; root-owned, 0755.
# This file is the single place to audit what Bakery's control plane can do as root.
#
# Names: APP and SLOT match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (at most 63 chars); the
# unit is bakery-APP-SLOT.service, the nginx site /etc/nginx/conf.d/bakery-APP.conf.
#
# Verbs (run as: sudo -n /usr/local/lib/bakery/bakery-sudo VERB ARGS...):
#   unit-install APP SLOT < content   write /etc/systemd/system/bakery-APP-SLOT.service
#                                     atomically; prints "changed" or "unchanged". The
#                                     content must run as User=bakery-agent and use only
#                                     allowlisted directives (see check_unit below).
#   unit-remove APP SLOT              remove that unit file; prints "removed" or "absent"
#   env-install APP SLOT < content    write the slot's environment file /etc/bakery/env/
#                                     bakery-APP-SLOT.env (root 0600 in a root 0700 dir, so
#                                     that units never read a file bakery-agent controls);
#                                     prints "changed" or "unchanged"
#   env-remove APP SLOT               remove it; prints "removed" or "absent"
#   systemctl VERB APP SLOT           VERB: start stop restart reload enable disable show
#                                     status is-active is-enabled is-failed reset-failed
#                                     (exit status of systemctl passed through;
#                                     reset-failed of a unit that is not loaded is a no-op)
#   daemon-reload                     systemctl daemon-reload
#   nginx-site-install APP < content  write /etc/nginx/conf.d/bakery-APP.conf atomically,
#                                     run `nginx -t`, restore the previous file if it fails;
#                                     prints "changed" or "unchanged"
#   nginx-site-remove APP             remove that file; prints "removed" or "absent"
#   nginx-test                        nginx -t
#   nginx-reload                      reload nginx (systemctl reload nginx)
#   journal APP SLOT [LINES] [follow] journalctl -u bakery-APP-SLOT.service -n LINES (200);
#                                     with "follow", keeps printing new lines (-f) until killed
#   certbot-certonly DOMAIN... --email EMAIL [--server HTTPS-URL]
#                                     certbot certonly --webroot -w /var/www/bakery-acme
#                                     --cert-name (first DOMAIN) --keep-until-expiring
#                                     --non-interactive --agree-tos (one certbot at a time:
#                                     waits for a lock); its deploy hook (kept for
#                                     certbot's own timer too) is `bakery-sudo nginx-reload`.
#                                     The webroot is root-owned: bakery-agent cannot redirect
#                                     root's writes with a symlink.
#   certbot-renew CERT-NAME [--server HTTPS-URL] [--force] [--dry-run]
#                                     certbot renew --cert-name CERT-NAME --non-interactive
#                                     --no-random-sleep-on-renew [--force-renewal]
#   cert-info CERT-NAME...            per name one line "cert NAME NOTAFTER-UNIX SERIAL", or
#                                     "cert NAME -" without a certificate (reads
#                                     /etc/letsencrypt/live/NAME/cert.pem, 0700 for others;
#                                     cached in /run/bakery-sudo until the file changes)
#   verbs                             list the verbs (for feature detection)
# Every call is logged to syslog/journal with the tag bakery-sudo. Exit status 2 = refused.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
umask 022

readonly NAME_RE='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
readonly MAX_CONTENT=1048576
readonly UNIT_DIR=/etc/systemd/system
readonly NGINX_DIR=/etc/nginx/conf.d
readonly ACME_WEBROOT=/var/www/bakery-acme
readonly AGENT=bakery-agent

refuse() { printf 'bakery-sudo: refused: %s\n' "$*" >&2; logger -t bakery-sudo -- "refused (${SUDO_USER:-?}): $*" 2>/dev/null || true; exit 2; }
fail() { printf 'bakery-sudo: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "must run as root (sudo -n $0 ...)"

check_name() { # KIND VALUE
	local v=$2
	[[ ${#v} -ge 1 && ${#v} -le 63 && $v =~ $NAME_RE ]] || refuse "invalid $1 name '${v}' (want ${NAME_RE})"
}
nargs() { # WANT GOT VERB
	[[ $1 == "$2" ]] || refuse "$3 takes $1 argument(s), got $2"
}
systemd_running() { [[ -d /run/systemd/system ]]; }

# read_content TMPFILE — stdin into TMPFILE, at most MAX_CONTENT bytes.
read_content() {
	head -c $((MAX_CONTENT + 1)) >"$1"
	[[ $(stat -c %s "$1") -le $MAX_CONTENT ]] || refuse "content larger than $MAX_CONTENT bytes"
	[[ -s $1 ]] || refuse "empty content"
	if LC_ALL=C grep -q $'\r' "$1"; then refuse "content contains carriage returns"; fi
}

# check_unit FILE — a unit Bakery may install: sections [Unit] [Service] [Install], only
# allowlisted keys, User=bakery-agent required, no privileged exec prefixes (+ ! !!), no
# keys that make PID 1 open files or change mounts/capabilities on the service's behalf.
check_unit() {
	local file=$1 line section="" key val user_ok=0 n=0
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		[[ $line =~ ^[[:space:]]*$ || $line =~ ^[[:space:]]*[#\;] ]] && continue
		[[ $line == *\\ ]] && refuse "unit line $n: line continuations are not allowed"
		if [[ $line =~ ^\[([A-Za-z]+)\][[:space:]]*$ ]]; then
			section=${BASH_REMATCH[1]}
			case $section in Unit | Service | Install) ;; *) refuse "unit line $n: section [$section] not allowed" ;; esac
			continue
		fi
		[[ $line == *=* ]] || refuse "unit line $n: not KEY=VALUE"
		key=${line%%=*}; key=${key#"${key%%[![:space:]]*}"}; key=${key%"${key##*[![:space:]]}"}
		val=${line#*=}; val=${val#"${val%%[![:space:]]*}"}; val=${val%"${val##*[![:space:]]}"}
		[[ -n $section ]] || refuse "unit line $n: key outside a section"
		case $section:$key in
		Unit:Description | Unit:Documentation | Unit:After | Unit:Before | Unit:StartLimitIntervalSec | Unit:StartLimitBurst) ;;
		Unit:Wants | Unit:Requires | Unit:BindsTo | Unit:PartOf)
			# pulling in e.g. reboot.target or poweroff.target must not be possible
			local u
			for u in $val; do
				case $u in
				bakery-*.service | network.target | network-online.target | docker.service | containerd.service | \
					nginx.service | postgresql.service) ;;
				*) refuse "unit line $n: $key=$u not allowed (bakery-*.service or a fixed set of system units)" ;;
				esac
			done
			;;
		Install:WantedBy)
			[[ $val == multi-user.target || $val == default.target ]] || refuse "unit line $n: WantedBy must be multi-user.target" ;;
		Service:Type | Service:WorkingDirectory | Service:Environment | Service:Restart | Service:RestartSec | \
			Service:TimeoutSec | Service:TimeoutStartSec | Service:TimeoutStopSec | Service:KillMode | \
			Service:KillSignal | Service:SendSIGKILL | Service:FinalKillSignal | Service:SuccessExitStatus | \
			Service:RemainAfterExit | Service:SyslogIdentifier | Service:UMask | Service:Nice | \
			Service:LimitNOFILE | Service:LimitNPROC | Service:MemoryMax | Service:MemoryHigh | Service:CPUQuota | \
			Service:TasksMax | Service:NoNewPrivileges | Service:PrivateTmp | Service:ProtectSystem | \
			Service:ProtectHome | Service:WatchdogSec | Service:NotifyAccess | Service:ExitType) ;;
		Service:User | Service:Group)
			[[ $val == "$AGENT" ]] || refuse "unit line $n: $key must be $AGENT"
			[[ $key == User ]] && user_ok=1
			;;
		Service:StandardOutput | Service:StandardError)
			case $val in journal | null | inherit | journal+console) ;; *) refuse "unit line $n: $key=$val not allowed" ;; esac ;;
		Service:EnvironmentFile)
			local p=${val#-}
			# Only env files written by env-install: root-owned, so that no
			# symlink planted by bakery-agent makes PID 1 read another file.
			[[ $p =~ ^/etc/bakery/env/bakery-[a-z0-9-]+\.env$ ]] || refuse "unit line $n: EnvironmentFile must be an env-install file (/etc/bakery/env/bakery-APP-SLOT.env)"
			;;
		Service:ExecStart | Service:ExecStartPre | Service:ExecStartPost | Service:ExecStop | \
			Service:ExecStopPost | Service:ExecReload)
			# Prefixes: @ - : are harmless; + ! !! would run with full privileges.
			local prefix=${val%%[!@:+!-]*}
			[[ $prefix != *[+!]* ]] || refuse "unit line $n: privileged exec prefix in $key"
			;;
		*) refuse "unit line $n: key $section/$key not allowed" ;;
		esac
	done <"$file"
	((user_ok)) || refuse "unit must set User=$AGENT in [Service]"
}

# check_nginx FILE — a site config Bakery may install. No quotes/backslashes (keeps the
# scan exact), no '..', file-path directives only under fixed roots, and no directives that
# make the root master process create or open arbitrary paths.
check_nginx() {
	local file=$1 stmt first second
	if grep -q '["'"'"'\\]' "$file"; then refuse "nginx site: quotes and backslashes are not allowed"; fi
	if grep -q '\.\.' "$file"; then refuse "nginx site: '..' is not allowed"; fi
	# statements: strip comments, split on ; { }
	while IFS= read -r stmt; do
		read -r first second _ <<<"$stmt" || true
		[[ -n ${first:-} ]] || continue
		case $first in
		access_log | error_log)
			[[ $second == off || $second == /var/log/nginx/* || $second == syslog:* ]] ||
				refuse "nginx site: $first must be off or under /var/log/nginx/" ;;
		include)
			case $second in
			/etc/letsencrypt/options-ssl-nginx.conf | /etc/nginx/proxy_params | /etc/nginx/mime.types | /etc/nginx/snippets/*) ;;
			*) refuse "nginx site: include $second not allowed" ;;
			esac ;;
		ssl_certificate | ssl_certificate_key | ssl_trusted_certificate | ssl_client_certificate | ssl_dhparam | ssl_crl | ssl_stapling_file)
			[[ $second == /etc/letsencrypt/* || $second == /etc/ssl/* ]] || refuse "nginx site: $first must be under /etc/letsencrypt or /etc/ssl" ;;
		*_temp_path | *_cache_path | load_module | user | pid | env | lock_file | working_directory | \
			ssl_password_file | ssl_session_ticket_key | ssl_engine | auth_basic_user_file | perl* | js_* | lua* | \
			daemon | master_process | worker_* | debug_points | google_perftools_profiles | *ssl_password_file)
			refuse "nginx site: directive $first not allowed" ;;
		esac
	done < <(sed 's/#.*$//' "$file" | tr '\n' ' ' | tr ';{}' '\n\n\n')
}

# install_atomic SRC DEST — prints changed/unchanged.
install_atomic() {
	local src=$1 dest=$2 tmp
	if [[ -f $dest && ! -L $dest ]] && cmp -s "$src" "$dest"; then
		echo unchanged
		return 0
	fi
	tmp=$(mktemp "$(dirname "$dest")/.bakery-sudo.XXXXXX")
	cat "$src" >"$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$dest"
	echo changed
}

remove_file() {
	if [[ -e $1 || -L $1 ]]; then rm -f -- "$1"; echo removed; else echo absent; fi
}

check_https_url() {
	[[ $1 =~ ^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$ ]] || refuse "invalid --server URL '$1' (https only)"
}
# certbot_lock — one certbot at a time (certbot itself fails at once with "Another
# instance of Certbot is already running"); the lock is held by certbot after exec.
certbot_lock() {
	mkdir -p /run/lock
	exec 8>/run/lock/bakery-sudo-certbot.lock
	flock -w 900 8 || fail "another certbot run holds the lock for more than 15 minutes"
}
check_email() {
	[[ ${#1} -le 254 && $1 =~ ^[A-Za-z0-9_%+][A-Za-z0-9._%+-]*@[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$ ]] || refuse "invalid e-mail address '$1'"
}
check_domain() {
	[[ ${#1} -le 253 && $1 =~ ^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || refuse "invalid domain '$1'"
}

VERB=${1:-}
[[ $# -gt 0 ]] && shift
logger -t bakery-sudo -- "${SUDO_USER:-root}: ${VERB} $*" 2>/dev/null || true

case $VERB in
unit-install)
	nargs 2 $# "$VERB"; check_name app "$1"; check_name slot "$2"
	tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
	read_content "$tmp"; check_unit "$tmp"
	install_atomic "$tmp" "$UNIT_DIR/bakery-$1-$2.service"
	;;
unit-remove)
	nargs 2 $# "$VERB"; check_name app "$1"; check_name slot "$2"
	remove_file "$UNIT_DIR/bakery-$1-$2.service"
	;;
env-install)
	nargs 2 $# "$VERB"; check_name app "$1"; check_name slot "$2"
	install -d -m 0700 -o root -g root /etc/bakery /etc/bakery/env
	tmp=$(mktemp /etc/bakery/env/.bakery-sudo.XXXXXX); trap 'rm -f "$tmp"' EXIT
	read_content "$tmp"
	dest="/etc/bakery/env/bakery-$1-$2.env"
	if [[ -f $dest && ! -L $dest ]] && cmp -s "$tmp" "$dest"; then
		echo unchanged
	else
		chmod 0600 "$tmp"
		mv -f "$tmp" "$dest"
		echo changed
	fi
	;;
env-remove)
	nargs 2 $# "$VERB"; check_name app "$1"; check_name slot "$2"
	remove_file "/etc/bakery/env/bakery-$1-$2.env"
	;;
systemctl)
	nargs 3 $# "$VERB"
	case $1 in
	start | stop | restart | reload | enable | disable | show | status | is-active | is-enabled | is-failed | reset-failed) ;;
	*) refuse "systemctl verb '$1' not allowed" ;;
	esac
	check_name app "$2"; check_name slot "$3"
	unit="bakery-$2-$3.service"
	case $1 in
	status) exec systemctl status --no-pager --lines=0 -- "$unit" ;;
	# idempotent: a unit that is not loaded (stopped, disabled) has no failed state to reset
	reset-failed) systemctl reset-failed -- "$unit" 2>/dev/null || true ;;
	*) exec systemctl "$1" -- "$unit" ;;
	esac
	;;
daemon-reload)
	nargs 0 $# "$VERB"
	exec systemctl daemon-reload
	;;
nginx-site-install)
	nargs 1 $# "$VERB"; check_name app "$1"
	dest="$NGINX_DIR/bakery-$1.conf"
	tmp=$(mktemp); backup=$(mktemp); trap 'rm -f "$tmp" "$backup"' EXIT
	read_content "$tmp"; check_nginx "$tmp"
	mkdir -p /run/lock
	exec 9>/run/lock/bakery-sudo-nginx.lock
	flock 9
	had_old=0
	if [[ -f $dest ]]; then cp -p "$dest" "$backup"; had_old=1; fi
	result=$(install_atomic "$tmp" "$dest")
	if [[ $result == changed ]] && ! out=$(nginx -t 2>&1); then
		if ((had_old)); then install_atomic "$backup" "$dest" >/dev/null; else rm -f "$dest"; fi
		printf '%s\n' "$out" >&2
		fail "nginx -t failed with the new site; previous configuration restored"
	fi
	echo "$result"
	;;
nginx-site-remove)
	nargs 1 $# "$VERB"; check_name app "$1"
	remove_file "$NGINX_DIR/bakery-$1.conf"
	;;
nginx-test)
	nargs 0 $# "$VERB"
	exec nginx -t
	;;
nginx-reload)
	nargs 0 $# "$VERB"
	if systemd_running; then exec systemctl reload nginx; else exec nginx -s reload; fi
	;;
journal)
	[[ $# -ge 2 && $# -le 4 ]] || refuse "journal takes APP SLOT [LINES] [follow]"
	check_name app "$1"; check_name slot "$2"
	lines=${3:-200}
	[[ $lines =~ ^[0-9]{1,6}$ ]] || refuse "invalid line count '$lines'"
	if [[ $# -eq 4 ]]; then
		[[ $4 == follow ]] || refuse "journal: 4th argument must be 'follow'"
		# The caller's signals do not reach us: sudo does not relay a signal
		# sent from its own process group, and the caller (bakery-agent) may
		# not signal root's processes. So follow only while our sudo lives:
		# when the session ends, the caller's watcher kills sudo, and we stop.
		journalctl --no-pager -o short-iso -n "$lines" -f -u "bakery-$1-$2.service" &
		jp=$!
		parent=$PPID
		while kill -0 "$jp" 2>/dev/null; do
			if ! kill -0 "$parent" 2>/dev/null; then kill "$jp" 2>/dev/null; break; fi
			sleep 0.5
		done
		wait "$jp" 2>/dev/null || true
		exit 0
	fi
	exec journalctl --no-pager -o short-iso -n "$lines" -u "bakery-$1-$2.service"
	;;
certbot-certonly)
	domains=() email="" server="" name=""
	while [[ $# -gt 0 ]]; do
		case $1 in
		--email) [[ $# -ge 2 ]] || refuse "--email needs a value"; email=$2; shift 2 ;;
		--server) [[ $# -ge 2 ]] || refuse "--server needs a value"; server=$2; check_https_url "$server"; shift 2 ;;
		-*) refuse "certbot-certonly option '$1' not allowed" ;;
		*) check_domain "$1"; domains+=(-d "$1"); name=${name:-$1}; shift ;;
		esac
	done
	[[ ${#domains[@]} -gt 0 ]] || refuse "certbot-certonly needs at least one DOMAIN"
	check_email "$email"
	install -d -m 0755 -o root -g root "$ACME_WEBROOT"
	args=(certonly --non-interactive --agree-tos --no-eff-email -m "$email" --cert-name "$name" "${domains[@]}"
		--keep-until-expiring --webroot -w "$ACME_WEBROOT" --deploy-hook "/usr/local/lib/bakery/bakery-sudo nginx-reload")
	[[ -n $server ]] && args+=(--server "$server")
	certbot_lock
	exec certbot "${args[@]}"
	;;
certbot-renew)
	[[ $# -ge 1 ]] || refuse "certbot-renew needs a CERT-NAME"
	check_domain "$1"
	args=(renew --cert-name "$1" --non-interactive --no-random-sleep-on-renew)
	shift
	while [[ $# -gt 0 ]]; do
		case $1 in
		--server) [[ $# -ge 2 ]] || refuse "--server needs a value"; check_https_url "$2"; args+=(--server "$2"); shift 2 ;;
		--force) args+=(--force-renewal); shift ;;
		--dry-run) args+=(--dry-run); shift ;;
		*) refuse "certbot-renew option '$1' not allowed" ;;
		esac
	done
	certbot_lock
	exec certbot "${args[@]}"
	;;
cert-info)
	[[ $# -ge 1 ]] || refuse "cert-info needs at least one CERT-NAME"
	for name in "$@"; do check_domain "$name"; done
	# Observed on every resync: openssl runs only when a certificate file changed (the
	# answer is cached by device, inode, mtime and size of live/NAME/cert.pem).
	cache=/run/bakery-sudo/cert-info
	install -d -m 0700 -o root -g root /run/bakery-sudo "$cache"
	for name in "$@"; do
		f=/etc/letsencrypt/live/$name/cert.pem
		if ! key=$(stat -L -c '%d:%i:%Y:%s' "$f" 2>/dev/null); then
			echo "cert $name -"
			continue
		fi
		if [[ -f $cache/$name ]] && read -r k end serial <"$cache/$name" && [[ $k == "$key" && -n $serial ]]; then
			echo "cert $name $end $serial"
			continue
		fi
		if out=$(openssl x509 -in "$f" -noout -enddate -serial 2>/dev/null) &&
			end=${out#*notAfter=} && end=$(date -u -d "${end%%$'\n'*}" +%s 2>/dev/null) &&
			serial=${out#*serial=} && serial=${serial%%$'\n'*} && [[ $serial =~ ^[0-9A-Fa-f]+$ ]]; then
			printf '%s %s %s\n' "$key" "$end" "$serial" >"$cache/$name"
			echo "cert $name $end $serial"
		else
			echo "cert $name -"
		fi
	done
	;;
verbs)
	echo unit-install unit-remove env-install env-remove systemctl daemon-reload nginx-site-install nginx-site-remove nginx-test nginx-reload journal certbot-certonly certbot-renew cert-info verbs
	;;
"") refuse "no verb given (try: verbs)" ;;
*) refuse "unknown verb '$VERB'" ;;
esac
BAKERY_SUDO_EOF
}

write_sudoers() {
	local tmp
	tmp=$(mktemp)
	cat >"$tmp" <<EOF
# Managed by Bakery's install-node-agent.sh — do not edit.
# $AGENT_USER may run exactly one command as root: the helper, which validates its
# arguments (fixed verbs, names ^[a-z0-9]([-a-z0-9]*[a-z0-9])?\$). Audit $HELPER.
Defaults:$AGENT_USER !lecture, env_reset
$AGENT_USER ALL=(root) NOPASSWD: $HELPER *
EOF
	if ! visudo -cf "$tmp" >/dev/null; then
		visudo -cf "$tmp" >&2 || true
		rm -f "$tmp"
		die "generated sudoers file does not validate (visudo -cf); nothing installed"
	fi
	put_file 440 root:root "$SUDOERS" <"$tmp"
	rm -f "$tmp"
	grep -Eq '^[@#]includedir[[:space:]]+/etc/sudoers.d' /etc/sudoers ||
		say "WARNING: /etc/sudoers does not include /etc/sudoers.d; $SUDOERS has no effect"
}

write_sshd_dropin() {
	ensure_dir 755 root:root /etc/ssh/sshd_config.d
	local before=$CHANGES
	put_file 644 root:root "$SSHD_DROPIN" <<'EOF'
# Managed by Bakery's install-node-agent.sh.
# Notice dead control-plane connections within ~15 s so that sshd ends their sessions
# (and the processes Bakery started in them).
ClientAliveInterval 5
ClientAliveCountMax 3
# The control plane multiplexes many sessions over one connection.
MaxSessions 20
EOF
	grep -Eiq '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/' /etc/ssh/sshd_config 2>/dev/null ||
		say "WARNING: /etc/ssh/sshd_config does not Include sshd_config.d; add 'Include /etc/ssh/sshd_config.d/*.conf' at its top"
	if [[ -x /usr/sbin/sshd ]]; then
		mkdir -p /run/sshd
		# Without any host key (an image whose keys are made at first boot) sshd -t fails
		# whatever the config: check the config with a throwaway key then.
		local hk=() tmpk=""
		if ! compgen -G '/etc/ssh/ssh_host_*_key' >/dev/null; then
			tmpk=$(mktemp -d)
			ssh-keygen -q -t ed25519 -N '' -f "$tmpk/key"
			hk=(-h "$tmpk/key")
		fi
		if ! /usr/sbin/sshd -t "${hk[@]}" >/dev/null 2>&1; then
			/usr/sbin/sshd -t "${hk[@]}" || true
			[[ -n $tmpk ]] && rm -rf "$tmpk"
			die "sshd -t fails with $SSHD_DROPIN in place (see above)"
		fi
		[[ -n $tmpk ]] && rm -rf "$tmpk"
	fi
	if ((CHANGES > before)); then
		if systemd_running && systemctl is-active --quiet ssh 2>/dev/null; then
			systemctl reload ssh && say "reloaded sshd"
		else
			say "sshd not running under systemd here; not reloaded"
		fi
	fi
}

# write_logrotate — rotation of the apps' nginx access logs (/var/log/nginx/bakery-APP.access,
# read incrementally by the control plane's traffic analytics): rotated to .1 (kept
# uncompressed until the next rotation, so that the reader can finish it), recreated 0644
# so that bakery-agent can read it, nginx told to reopen its logs.
write_logrotate() {
	[[ -d /etc/logrotate.d ]] || mkdir -p /etc/logrotate.d
	put_file 644 root:root /etc/logrotate.d/bakery-nginx <<'EOF'
# Written by install-node-agent.sh: Bakery's per-app nginx access logs.
/var/log/nginx/bakery-*.access {
	daily
	maxsize 100M
	rotate 7
	missingok
	notifempty
	compress
	delaycompress
	create 0644 root root
	sharedscripts
	postrotate
		[ ! -f /run/nginx.pid ] || kill -USR1 "$(cat /run/nginx.pid)"
	endscript
}
EOF
}

main() {
	local key=${BAKERY_PUBLIC_KEY:-} docker=1 postgres=0
	while [[ $# -gt 0 ]]; do
		case $1 in
		--key) [[ $# -ge 2 ]] || die "--key needs a value"; key=$2; shift 2 ;;
		--key=*) key=${1#--key=}; shift ;;
		--no-docker) docker=0; shift ;;
		--with-postgresql) postgres=1; shift ;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown option '$1' (see --help)" ;;
		esac
	done
	[[ $(id -u) == 0 ]] || die "must run as root (pipe it to 'sudo bash -s -- --key ...')"
	check_os
	key=$(printf '%s' "$key" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
	check_key "$key"

	local pkgs=(git curl "nginx|nginx-light|nginx-full|nginx-core|nginx-extras" certbot python3-certbot-nginx
		build-essential postgresql-client openssh-server sudo ca-certificates)
	((docker)) && pkgs+=("docker.io|docker-ce")
	((postgres)) && pkgs+=(postgresql)
	install_packages "${pkgs[@]}"
	check_key "$key" # again, now that ssh-keygen is certainly there

	ensure_user
	ensure_authorized_key "$key"
	if ((docker)); then
		ensure_group_member "$AGENT_USER" docker
		say "NOTE: $AGENT_USER is in the docker group, which is ROOT-EQUIVALENT on this host"
	fi
	write_helper
	write_sudoers
	ensure_dir 755 "$AGENT_USER:$AGENT_USER" /var/lib/bakery
	ensure_dir 755 "$AGENT_USER:$AGENT_USER" /var/log/bakery
	write_logrotate
	write_sshd_dropin

	say "done: $CHANGES change(s)"
	echo bakery-ready
}

# stdin is the script itself when piped into `bash -s`: keep children away from it.
main "$@" </dev/null
