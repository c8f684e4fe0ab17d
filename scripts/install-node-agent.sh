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
#   * creates /var/lib/bakery (bakery-agent, 0755), /var/log/bakery and /var/lib/bakery-apps
#     (root, 0755: each app's data directory, owned by the app's own user);
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
# Names: APP matches ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (at most 63 chars), SLOT is blue or
# green; the unit is bakery-APP-SLOT.service, the nginx site /etc/nginx/conf.d/bakery-APP.conf.
# A process PROC (a worker) is a name like APP, at most 20 chars, none of whose '-'-separated
# parts is "blue" or "green" (so that bakery-APP-SLOT-PROC@N.service names one app, slot and
# process only).
# Every app runs as its own system user (app_user), never as bakery-agent.
#
# Verbs (run as: sudo -n /usr/local/lib/bakery/bakery-sudo VERB ARGS...):
# Limits (trailing options of unit-install, proc-install and sched-install and their render
# verbs, reconciler/nodefiles.Limits): --persist PATH (repeatable; PATH relative, clean, parts
# of [A-Za-z0-9._-] not starting with '.': a bind mount of /var/lib/bakery-apps/APP/persistent/
# PATH-with-/-as-+ (app-owned 0700 in a root-owned dir, created here) at PATH in the release),
# --memory BYTES (MemoryMax), --cpu MILLICORES (CPUQuota, a multiple of 10), --tasks N (TasksMax).
#   unit-install APP SLOT PORT RELEASE [STOP] [LIMITS]
#                                     render the slot's unit from this file's template
#                                     (render_unit) into /etc/systemd/system/bakery-APP-SLOT
#                                     .service; the app runs as its own user (app_user,
#                                     created here), sandboxed; prints "changed"/"unchanged".
#                                     No unit text is ever accepted from the caller.
#   render-unit APP SLOT PORT RELEASE [STOP]   print that unit (no root needed)
#   unit-remove APP SLOT              remove that unit file; prints "removed" or "absent"
#   proc-install APP SLOT PROC RELEASE [STOP]
#                                     render the template unit of process PROC of the slot
#                                     (render_proc) into /etc/systemd/system/bakery-APP-SLOT
#                                     -PROC@.service (instances @1..@N); same user, sandbox
#                                     and env file as the slot's unit, no PORT, SIGTERM and
#                                     STOP seconds to finish; prints "changed"/"unchanged"
#   render-proc APP SLOT PROC RELEASE [STOP]   print that unit (no root needed)
#   proc-scale APP SLOT PROC N        enable and start instances 1..N of the process
#                                     (failed ones reset first), disable and stop the
#                                     others (N 0..99: 0 stops them all)
#   proc-remove APP SLOT [PROC]       stop and disable every instance of PROC (without PROC:
#                                     of every process of the slot) and remove its template
#                                     unit; prints "removed" or "absent" per process
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
#   nginx-site-install APP SLOT PORT [--listen N] [--tls-port N] [--tls] [--host H]...
#                     [--cert H]...   render the app's site (render_site) into
#                                     /etc/nginx/conf.d/bakery-APP.conf atomically, run
#                                     `nginx -t`, restore the previous file if it fails;
#                                     prints "changed" or "unchanged". No site text is ever
#                                     accepted from the caller.
#   render-site APP SLOT PORT [options]   print that site (no root needed)
#   nginx-site-remove APP             remove that file; prints "removed" or "absent"
#   nginx-test                        nginx -t
#   nginx-reload                      reload nginx (systemctl reload nginx)
#   journal APP SLOT [LINES] [follow] [--process PROC]
#                                     journalctl -u bakery-APP-SLOT.service -n LINES (200);
#                                     with "follow", keeps printing new lines (-f) until killed;
#                                     with --process, the units bakery-APP-SLOT-PROC@*.service;
#                                     SLOT may be sched-NAME: the schedule's service
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
#   build APP RELEASE < script        run the build script (from the control plane) as the
#                                     app's own user in its release directory, clean
#                                     environment, no new privileges (see run_build)
#   run APP SLOT RELEASE SCRIPT TIMEOUT [--tty] [LIMITS]
#                                     run /bin/sh /var/lib/bakery/apps/APP/run/SCRIPT (written
#                                     by bakery-agent) as the app's user in the release
#                                     directory with the slot's environment file (read by
#                                     systemd; PORT unset) and the sandbox of the app's unit,
#                                     as a transient unit (systemd-run --wait --pipe, or --pty
#                                     with --tty); output streams back, the exit status is
#                                     passed through; stopped after TIMEOUT seconds (exit 124)
#                                     and when the caller goes away (see run_script)
#   app-remove APP [--keep-data]      remove the app's user and /var/lib/bakery-apps/APP
#                                     (refused while one of its units, processes included,
#                                     is active); --keep-data keeps APP/persistent and the
#                                     user that owns it
#   sched-install APP NAME SLOT RELEASE TIMEOUT CONCURRENCY RUNTIME CALENDAR
#                                     render the schedule's timer and service (render_sched_*)
#                                     into /etc/systemd/system/bakery-APP-sched-NAME.timer/.service
#                                     (the job runs as the app's user in RELEASE with SLOT's env
#                                     file, sandboxed like the slot; RUNTIME docker: a docker run
#                                     --rm of the release's image as bakery-agent), reload systemd
#                                     when they changed, enable and start the timer; prints
#                                     "changed"/"unchanged". CALENDAR must pass systemd-analyze.
#   render-sched APP NAME SLOT RELEASE TIMEOUT CONCURRENCY RUNTIME CALENDAR
#                                     print that timer, then that service (no root needed)
#   sched-remove APP [NAME]           stop, disable and remove that schedule (without NAME: every
#                                     schedule of APP, recognised by its Description); prints
#                                     "removed NAME" per schedule
#   data-usage APP                    per persistent directory of APP one line "persistent PATH
#                                     KIB" (du -sk, one file system, 10 s at most; KIB "-" when
#                                     du failed): APP/persistent/* and the docker volumes
#                                     labelled bakery.app=APP (their label bakery.path)
#   check KIND VALUE                  apply the rule of one parameter kind (app slot port
#                                     release seconds host cert-host process replicas script
#                                     sched-name concurrency runtime calendar header-name
#                                     text body-size persist memory cpu tasks); exit 0 or 2
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
readonly APPS_DATA=/var/lib/bakery-apps
IFS=$' \t\n'

refuse() { printf 'bakery-sudo: refused: %s\n' "$*" >&2; logger -t bakery-sudo -- "refused (${SUDO_USER:-?}): $*" 2>/dev/null || true; exit 2; }
fail() { printf 'bakery-sudo: %s\n' "$*" >&2; exit 1; }


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

# --- Parameters. One rule per kind; the control plane applies the same rules before it
# calls (package api: ValidateName, ValidateHost, ValidateCertificateHost, ValidatePort;
# reconciler/nodefiles: ValidateSlot, ValidateRelease, ValidateStopTimeout), and
# scripts/testdata/privilege/params.json is run against both sides (scripts/helper_test.go).
# No parameter reaches a file or a command line unchecked; nothing else is ever installed.
readonly HOST_RE='^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
readonly RELEASE_RE='^[0-9a-f]{40}([0-9a-f]{24})?(-[0-9a-f]{16})?$'
check_slot() { [[ $1 == blue || $1 == green ]] || refuse "invalid slot '$1' (blue or green)"; }
check_port() {
	if ! [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] || (($1 > 65535)); then refuse "invalid port '$1' (1-65535)"; fi
}
check_seconds() {
	if ! [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] || (($1 > 86400)); then refuse "invalid seconds '$1' (1-86400)"; fi
}
check_release() { [[ $1 =~ $RELEASE_RE ]] || refuse "invalid release '$1' (COMMIT or COMMIT-BUILDHASH)"; }
check_redirect_host() { [[ $1 != '*.'* ]] || refuse "invalid redirect host '$1'"; check_host "$1"; }
check_body_size() { [[ $1 =~ ^(0|[1-9][0-9]{0,5}[kmg]?)$ ]] || refuse "invalid body size '$1'"; }
check_header_name() {
	[[ $1 =~ ^[A-Za-z0-9][-A-Za-z0-9]{0,63}$ && ${1,,} != x-bakery-* ]] || refuse "invalid header name '$1'"
}
# check_text VALUE — a header value or maintenance message: 1-512 printable ASCII characters
# without " \ ; { } $ (api.ValidateText), so that it can stand inside an nginx "…" string.
check_text() {
	local re='^[][ !#%&'"'"'()*+,./0-9:<=>?@A-Z^_`a-z|~-]{1,512}$'
	[[ $1 =~ $re ]] || refuse "invalid text (printable ASCII without \" \\ ; { } \$, 1-512)"
}
# b64_text B64 — decode base64 free text, check it and print it. The encoding must be the
# canonical one of the text (nothing dropped, e.g. a NUL, on the way).
b64_text() {
	local t
	[[ ${#1} -le 700 && $1 =~ ^[A-Za-z0-9+/]+={0,2}$ ]] || refuse "invalid base64 text"
	t=$(printf '%s' "$1" | base64 -d 2>/dev/null) || refuse "invalid base64 text"
	[[ $(printf '%s' "$t" | base64 -w0) == "$1" ]] || refuse "invalid base64 text"
	check_text "$t"
	printf '%s' "$t"
}
check_host() { [[ ${#1} -le 253 && $1 =~ $HOST_RE ]] || refuse "invalid host name '$1'"; }
valid_proc() { [[ ${#1} -ge 1 && ${#1} -le 20 && $1 =~ $NAME_RE && -$1- != *-blue-* && -$1- != *-green-* ]]; }
check_proc() {
	valid_proc "$1" ||
		refuse "invalid process name '$1' (want ${NAME_RE}, at most 20 chars, no part 'blue' or 'green')"
}
check_replicas() { [[ $1 =~ ^(0|[1-9][0-9]?)$ ]] || refuse "invalid replicas '$1' (0-99)"; }
# check_script NAME — a run script's file name in the app's run directory: NAME.sh, NAME a
# DNS label of at most 63 characters (no path, no dot but the suffix).
check_script() {
	local b=${1%.sh}
	[[ $1 == *.sh && ${#b} -ge 1 && ${#b} -le 63 && $b =~ $NAME_RE ]] ||
		refuse "invalid script name '$1' (want NAME.sh, NAME ${NAME_RE} of at most 63)"
}
# Schedules (reconciler/nodefiles: ValidateSchedName, ValidateConcurrency, ValidateCalendar).
check_sched_name() {
	[[ ${#1} -ge 1 && ${#1} -le 20 && $1 =~ $NAME_RE ]] || refuse "invalid schedule name '$1' (DNS label, at most 20)"
}
check_concurrency() { [[ $1 == Forbid || $1 == Allow ]] || refuse "invalid concurrency '$1' (Forbid or Allow)"; }
check_runtime() { [[ $1 == systemd || $1 == docker ]] || refuse "invalid runtime '$1' (systemd or docker)"; }
# check_calendar — the characters of a calendar expression (no quotes, %, ;, $, \, line
# breaks; single spaces), then systemd's own parser.
readonly CALENDAR_RE='^[A-Za-z0-9*,./:~-]+( [A-Za-z0-9*,./:~-]+)*$'
check_calendar() {
	[[ ${#1} -le 100 && $1 =~ $CALENDAR_RE ]] || refuse "invalid calendar expression '$1'"
	systemd-analyze calendar -- "$1" >/dev/null 2>&1 || refuse "calendar expression '$1' is refused by systemd-analyze calendar"
}

# check_persist PATH — a persistent directory (api.ValidatePersistentPath): relative, clean,
# '/'-separated parts of [A-Za-z0-9._-] not starting with '.', at most 128 characters.
check_persist() {
	[[ ${#1} -le 128 && $1 =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$ ]] ||
		refuse "invalid persistent path '$1'"
}
check_memory() {
	[[ $1 =~ ^[1-9][0-9]{0,12}$ ]] && (($1 >= 8388608 && $1 <= 1099511627776)) ||
		refuse "invalid memory '$1' (bytes, 8Mi-1Ti)"
}
check_cpu() {
	[[ $1 =~ ^[1-9][0-9]{0,6}$ ]] && (($1 <= 1024000 && $1 % 10 == 0)) ||
		refuse "invalid cpu '$1' (millicores, a multiple of 10, at most 1024000)"
}
check_tasks() { [[ $1 =~ ^[1-9][0-9]{0,6}$ ]] && (($1 <= 1000000)) || refuse "invalid tasks '$1' (1-1000000)"; }

# limit_opts [--persist PATH]... [--memory BYTES] [--cpu MILLI] [--tasks N] — check them; sets
# L_PERSIST (array), L_MEM, L_CPU, L_TASKS (empty: no limit).
limit_opts() {
	L_PERSIST=() L_MEM='' L_CPU='' L_TASKS=''
	local p
	while [[ $# -gt 0 ]]; do
		[[ $# -ge 2 ]] || refuse "option $1 needs a value"
		case $1 in
		--persist)
			check_persist "$2"
			for p in "${L_PERSIST[@]}"; do
				[[ $p != "$2" && $p != "$2"/* && $2 != "$p"/* ]] || refuse "persistent paths '$p' and '$2' overlap"
			done
			((${#L_PERSIST[@]} < 16)) || refuse "more than 16 persistent paths"
			L_PERSIST+=("$2") ;;
		--memory) check_memory "$2"; L_MEM=$2 ;;
		--cpu) check_cpu "$2"; L_CPU=$2 ;;
		--tasks) check_tasks "$2"; L_TASKS=$2 ;;
		*) refuse "unknown option '$1'" ;;
		esac
		shift 2
	done
}

# limit_lines APP RELEASE — the unit lines of the limits (reconciler/nodefiles.Limits.unitLines).
limit_lines() {
	local p
	for p in "${L_PERSIST[@]}"; do
		printf 'BindPaths=%s/%s/persistent/%s:/var/lib/bakery/apps/%s/releases/%s/%s\n' "$APPS_DATA" "$1" "${p//\//+}" "$1" "$2" "$p"
	done
	[[ -z $L_MEM ]] || printf 'MemoryMax=%s\n' "$L_MEM"
	[[ -z $L_CPU ]] || printf 'CPUQuota=%s%%\n' "$((L_CPU / 10))"
	[[ -z $L_TASKS ]] || printf 'TasksMax=%s\n' "$L_TASKS"
	return 0
}

# docker_limits — the docker run options of the limits (nodefiles.Limits.DockerArgs), each
# followed by a blank.
docker_limits() {
	[[ -z $L_MEM ]] || printf -- '--memory %s ' "$L_MEM"
	[[ -z $L_CPU ]] || printf -- '--cpus %d.%03d ' "$((L_CPU / 1000))" "$((L_CPU % 1000))"
	[[ -z $L_TASKS ]] || printf -- '--pids-limit %s ' "$L_TASKS"
	return 0
}

# ensure_persist APP — create the app's persistent directories (L_PERSIST) under the
# root-owned APP/persistent: each owned by the app's user, 0700 (an existing one is kept as
# it is: it holds the app's data). Needs APP_USER (ensure_app).
ensure_persist() {
	local p d
	((${#L_PERSIST[@]} > 0)) || return 0
	install -d -m 0755 -o root -g root "$APPS_DATA/$1/persistent"
	for p in "${L_PERSIST[@]}"; do
		d="$APPS_DATA/$1/persistent/${p//\//+}"
		[[ -L $d ]] && rm -f -- "$d"
		[[ -d $d ]] || install -d -m 0700 -o "$APP_USER" -g "$APP_USER" "$d"
	done
	return 0
}

# app_user APP — the app's own system user (reconciler/nodefiles.AppUser): bakery-app-APP,
# or when longer than 31 characters bakery-app-<first 11 of APP>-<8 hex of sha256(APP)>.
app_user() {
	local u="bakery-app-$1" h
	if ((${#u} > 31)); then
		h=$(printf '%s' "$1" | sha256sum)
		u="bakery-app-${1:0:11}-${h:0:8}"
	fi
	printf '%s' "$u"
}

# ensure_app APP — create the app's user (no login, no password; home = its data dir) and
# its directories under the root-owned $APPS_DATA: APP (root 0755) and APP/data (the app's,
# 0700), the only place its units may write. Sets APP_USER.
ensure_app() {
	APP_USER=$(app_user "$1")
	if ! getent passwd "$APP_USER" >/dev/null; then
		local g=(--user-group)
		getent group "$APP_USER" >/dev/null && g=(--gid "$APP_USER")
		useradd --system "${g[@]}" --no-create-home --home-dir "$APPS_DATA/$1/data" \
			--shell /usr/sbin/nologin --comment "Bakery app $1" "$APP_USER" ||
			fail "cannot create user $APP_USER"
		logger -t bakery-sudo -- "created user $APP_USER" 2>/dev/null || true
	fi
	install -d -m 0755 -o root -g root "$APPS_DATA" "$APPS_DATA/$1"
	install -d -m 0700 -o "$APP_USER" -g "$APP_USER" "$APPS_DATA/$1/data"
}

# render_unit APP SLOT PORT RELEASE STOP — the unit of a slot (reconciler/nodefiles.Unit):
# the app runs as its own user, read-only except its data dir, without privileges.
render_unit() {
	local app=$1 slot=$2 port=$3 rel=$4 stop=$5 user
	user=$(app_user "$app")
	cat <<EOF
# Generated by Bakery; do not edit: it is rewritten on the next rollout.
[Unit]
Description=Bakery app $app, $slot slot, commit ${rel:0:12}
After=network.target
StartLimitIntervalSec=0

[Service]
Type=simple
User=$user
Group=$user
WorkingDirectory=/var/lib/bakery/apps/$app/releases/$rel
Environment=PORT=$port
EnvironmentFile=/etc/bakery/env/bakery-$app-$slot.env
ExecStart=/bin/sh /var/lib/bakery/apps/$app/run/$slot.sh
Restart=on-failure
RestartSec=1
TimeoutStopSec=$stop
SyslogIdentifier=bakery-$app-$slot
ReadWritePaths=$APPS_DATA/$app/data
EOF
	limit_lines "$app" "$rel"
	sandbox_lines
	printf '\n[Install]\nWantedBy=multi-user.target\n'
}

# sandbox_lines — the hardening of every app unit (reconciler/nodefiles.unitSandbox), one
# property a line; `run` passes the same properties to its transient unit.
sandbox_lines() {
	cat <<'EOF'
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectProc=invisible
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RemoveIPC=yes
CapabilityBoundingSet=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
EOF
}

# unit_args APP SLOT PORT RELEASE [STOP] — check them; sets U_ARGS (STOP defaults to 10).
unit_args() {
	[[ $# -ge 4 ]] || refuse "unit: want APP SLOT PORT RELEASE [STOP-SECONDS] [LIMITS], got $# argument(s)"
	check_name app "$1"; check_slot "$2"; check_port "$3"; check_release "$4"
	local stop=10
	U_ARGS=("$1" "$2" "$3" "$4")
	shift 4
	if [[ $# -ge 1 && $1 != --* ]]; then stop=$1; shift; fi
	check_seconds "$stop"
	limit_opts "$@"
	U_ARGS+=("$stop")
}

# render_proc APP SLOT PROC RELEASE STOP — the template unit of a process of a slot
# (reconciler/nodefiles.ProcUnit): like the slot's unit, without a port; instance %i.
render_proc() {
	local app=$1 slot=$2 proc=$3 rel=$4 stop=$5 user
	user=$(app_user "$app")
	cat <<EOF
# Generated by Bakery; do not edit: it is rewritten on the next rollout.
[Unit]
Description=Bakery app $app, $slot slot, process $proc %i, commit ${rel:0:12}
After=network.target
StartLimitIntervalSec=0

[Service]
Type=simple
User=$user
Group=$user
WorkingDirectory=/var/lib/bakery/apps/$app/releases/$rel
Environment=BAKERY_PROCESS=$proc BAKERY_REPLICA=%i
EnvironmentFile=/etc/bakery/env/bakery-$app-$slot.env
ExecStart=/bin/sh /var/lib/bakery/apps/$app/run/$slot-$proc.sh
Restart=on-failure
RestartSec=1
KillSignal=SIGTERM
TimeoutStopSec=$stop
SyslogIdentifier=bakery-$app-$slot-$proc
ReadWritePaths=$APPS_DATA/$app/data
EOF
	limit_lines "$app" "$rel"
	sandbox_lines
	printf '\n[Install]\nWantedBy=multi-user.target\n'
}

# proc_args APP SLOT PROC RELEASE [STOP] — check them; sets P_ARGS (STOP defaults to 10).
proc_args() {
	[[ $# -ge 4 ]] || refuse "process unit: want APP SLOT PROC RELEASE [STOP-SECONDS] [LIMITS], got $# argument(s)"
	check_name app "$1"; check_slot "$2"; check_proc "$3"; check_release "$4"
	local stop=10
	P_ARGS=("$1" "$2" "$3" "$4")
	shift 4
	if [[ $# -ge 1 && $1 != --* ]]; then stop=$1; shift; fi
	check_seconds "$stop"
	limit_opts "$@"
	P_ARGS+=("$stop")
}

# proc_instances APP SLOT PROC — the loaded or enabled instance numbers of the process.
proc_instances() {
	{
		systemctl list-units --all --plain --no-legend "bakery-$1-$2-$3@*.service" 2>/dev/null | awk '{print $1}'
		local f
		for f in "$UNIT_DIR"/*.wants/"bakery-$1-$2-$3@"*.service; do [[ -e $f || -L $f ]] && basename "$f"; done
	} | sed -n "s/^bakery-$1-$2-$3@\([1-9][0-9]\{0,1\}\)\.service\$/\1/p" | sort -un
}

# slot_procs APP SLOT — the processes of the slot that have a template unit.
slot_procs() {
	local f p
	for f in "$UNIT_DIR/bakery-$1-$2-"*@.service; do
		[[ -f $f ]] || continue
		p=${f#"$UNIT_DIR/bakery-$1-$2-"}; p=${p%@.service}
		valid_proc "$p" && printf '%s\n' "$p"
	done
	return 0
}

# sched_args APP NAME SLOT RELEASE TIMEOUT CONCURRENCY RUNTIME CALENDAR — check them.
# Sets S_ARGS (the first 8) and the limits (runtime docker: no --persist).
sched_args() {
	[[ $# -ge 8 ]] || refuse "schedule: want 8 arguments [LIMITS], got $#"
	check_name app "$1"; check_sched_name "$2"; check_slot "$3"; check_release "$4"; check_seconds "$5"
	check_concurrency "$6"; check_runtime "$7"; check_calendar "$8"
	S_ARGS=("${@:1:8}")
	limit_opts "${@:9}"
	[[ $7 != docker || ${#L_PERSIST[@]} -eq 0 ]] || refuse "schedule: no --persist with runtime docker"
}

# render_sched_timer APP NAME ... CALENDAR — a schedule's timer (reconciler/nodefiles.SchedTimer).
render_sched_timer() {
	cat <<EOF
# Generated by Bakery; do not edit: drift is repaired.
[Unit]
Description=Bakery app $1, schedule $2

[Timer]
OnCalendar=$8
Persistent=true
AccuracySec=1s
Unit=bakery-$1-sched-$2.service

[Install]
WantedBy=timers.target
EOF
}

# render_sched_service APP NAME SLOT RELEASE TIMEOUT CONCURRENCY RUNTIME CALENDAR — a
# schedule's service (reconciler/nodefiles.SchedService): a oneshot, so that a run due
# while the last one is still running is skipped (Forbid); with Allow the job runs in the
# background under timeout(1) and KillMode=process lets it outlive the service.
render_sched_service() {
	local app=$1 name=$2 slot=$3 rel=$4 timeout=$5 conc=$6 rt=$7 unit job user
	unit="bakery-$app-sched-$name"
	printf '# Generated by Bakery; do not edit: drift is repaired.\n'
	printf '[Unit]\nDescription=Bakery app %s, schedule %s\nAfter=network.target\nStartLimitIntervalSec=0\n\n' "$app" "$name"
	printf '[Service]\nType=oneshot\n'
	if [[ $rt == docker ]]; then
		printf 'User=%s\nGroup=%s\nWorkingDirectory=/var/lib/bakery/apps/%s\n' "$AGENT" "$AGENT" "$app"
		local nm=""
		[[ $conc == Forbid ]] && nm="--name $unit "
		job="/usr/bin/docker run --rm ${nm}--init --env-file /var/lib/bakery/apps/$app/run/$slot.env --env BAKERY_SCHEDULE=$name --env BAKERY_RELEASE=$rel --volume /var/lib/bakery/apps/$app/run/sched-$name.sh:/bakery-sched.sh:ro --label bakery.app=$app --label bakery.release=$rel $(docker_limits)bakery/$app:$rel /bin/sh /bakery-sched.sh"
	else
		user=$(app_user "$app")
		printf 'User=%s\nGroup=%s\nWorkingDirectory=/var/lib/bakery/apps/%s/releases/%s\n' "$user" "$user" "$app" "$rel"
		printf 'EnvironmentFile=/etc/bakery/env/bakery-%s-%s.env\n' "$app" "$slot"
		printf 'Environment=BAKERY_SCHEDULE=%s BAKERY_RELEASE=%s\n' "$name" "$rel"
		job="/bin/sh /var/lib/bakery/apps/$app/run/sched-$name.sh"
	fi
	if [[ $conc == Allow ]]; then
		printf "ExecStart=/bin/sh -c '/usr/bin/timeout -k 10 %s %s </dev/null &'\nKillMode=process\n" "$timeout" "$job"
	else
		printf 'ExecStart=%s\nTimeoutStartSec=%s\n' "$job" "$timeout"
		if [[ $rt == docker ]]; then
			printf "ExecStopPost=/bin/sh -c '/usr/bin/docker rm -f %s >/dev/null 2>&1 || true'\n" "$unit"
		fi
	fi
	printf 'SyslogIdentifier=%s\n' "$unit"
	if [[ $rt != docker ]]; then
		printf 'ReadWritePaths=%s/%s/data\n' "$APPS_DATA" "$app"
		limit_lines "$app" "$rel"
		sandbox_lines
	fi
}

# sched_ours APP NAME FILE — FILE is absent or is APP's schedule NAME (its Description).
sched_ours() {
	[[ ! -e $3 && ! -L $3 ]] && return 0
	[[ -f $3 && ! -L $3 ]] && grep -qxF "Description=Bakery app $1, schedule $2" "$3"
}

# sched_remove APP NAME — stop, disable and remove one schedule's units.
sched_remove() {
	local u="bakery-$1-sched-$2"
	systemctl disable --now -- "$u.timer" >/dev/null 2>&1 || true
	systemctl stop -- "$u.service" >/dev/null 2>&1 || true
	# Allow: runs left running by KillMode=process.
	systemctl kill --signal=SIGKILL -- "$u.service" >/dev/null 2>&1 || true
	# And Persistent='s record of the last run: a schedule of that name made later must
	# not catch up a run of this one at once.
	rm -f -- "$UNIT_DIR/$u.timer" "$UNIT_DIR/$u.service" "/var/lib/systemd/timers/stamp-$u.timer"
	systemctl reset-failed -- "$u.service" "$u.timer" >/dev/null 2>&1 || true
	echo "removed $2"
}

# site_args APP SLOT PORT [--listen N] [--tls-port N] [--tls] [--host H]... [--cert H]...
#   [--hsts] [--no-websockets] [--no-buffering] [--body-size S] [--read-timeout N]
#   [--send-timeout N] [--header NAME B64VALUE]... [--redirect FROM TO]... [--maintenance B64MSG]
# — check them (a --cert must be one of the --host names; free text arrives base64 encoded
# and is decoded and checked by check_text); sets the S_* globals.
site_args() {
	[[ $# -ge 3 ]] || refuse "nginx site: want APP SLOT PORT [options]"
	check_name app "$1"; check_slot "$2"; check_port "$3"
	S_APP=$1 S_SLOT=$2 S_PORT=$3 S_LISTEN=80 S_TLSPORT=443 S_TLS=0 S_HOSTS=() S_CERTS=()
	S_HSTS=0 S_WS=1 S_BUFFER=1 S_BODY='' S_RTIME='' S_STIME='' S_HNAMES=() S_HVALUES=() S_RFROM=() S_RTO=() S_MAINT=''
	shift 3
	local c h ok v lc seen=' '
	while [[ $# -gt 0 ]]; do
		case $1 in
		--tls) S_TLS=1; shift; continue ;;
		--hsts) S_HSTS=1; shift; continue ;;
		--no-websockets) S_WS=0; shift; continue ;;
		--no-buffering) S_BUFFER=0; shift; continue ;;
		--listen | --tls-port | --host | --cert | --body-size | --read-timeout | --send-timeout | --maintenance)
			[[ $# -ge 2 ]] || refuse "nginx site: $1 needs a value" ;;
		--header | --redirect) [[ $# -ge 3 ]] || refuse "nginx site: $1 needs two values" ;;
		*) refuse "nginx site: unknown argument '$1'" ;;
		esac
		case $1 in
		--listen) check_port "$2"; S_LISTEN=$2 ;;
		--tls-port) check_port "$2"; S_TLSPORT=$2 ;;
		--host) check_host "$2"; S_HOSTS+=("$2") ;;
		--cert) check_domain "$2"; S_CERTS+=("$2") ;;
		--body-size) check_body_size "$2"; S_BODY=$2 ;;
		--read-timeout) check_seconds "$2"; S_RTIME=$2 ;;
		--send-timeout) check_seconds "$2"; S_STIME=$2 ;;
		--maintenance) v=$(b64_text "$2"); S_MAINT=$v ;;
		--header)
			check_header_name "$2"; v=$(b64_text "$3")
			lc=${2,,}
			[[ $seen != *" $lc "* && $lc != strict-transport-security && $lc != retry-after ]] ||
				refuse "nginx site: header '$2' repeated or reserved"
			seen+="$lc "; S_HNAMES+=("$2"); S_HVALUES+=("$v"); shift ;;
		--redirect) check_redirect_host "$2"; check_redirect_host "$3"; S_RFROM+=("$2"); S_RTO+=("$3"); shift ;;
		esac
		shift 2
	done
	[[ ${#S_HOSTS[@]} -le 100 ]] || refuse "nginx site: at most 100 hosts"
	[[ ${#S_HNAMES[@]} -le 20 && ${#S_RFROM[@]} -le 20 ]] || refuse "nginx site: at most 20 headers and 20 redirects"
	for c in "${S_CERTS[@]}"; do
		ok=0
		for h in "${S_HOSTS[@]}"; do [[ $h == "$c" ]] && ok=1; done
		((ok)) || refuse "nginx site: certificate host '$c' is not one of the hosts"
	done
	local served=" ${S_HOSTS[*]} "
	if [[ ${#S_HOSTS[@]} -eq 0 ]]; then served=" $S_APP "; fi
	for c in "${S_RFROM[@]}"; do
		[[ $served != *" $c "* ]] || refuse "nginx site: redirected host '$c' is served"
		served+="$c "
	done
}

site_challenge() {
	printf '\n    location ^~ /.well-known/acme-challenge/ {\n'
	printf '        root %s;\n' "$ACME_WEBROOT"
	printf '        default_type text/plain;\n'
	printf '        add_header X-Bakery-Acme 1 always;\n'
	printf '    }\n'
}

# site_proxy [TOKEN] — the location that proxies to the active slot (in maintenance: answers
# 503); with TOKEN (an HTTPS server) also X-Bakery-Site and HSTS.
# shellcheck disable=SC2016 # nginx variables, not shell ones
site_proxy() {
	local i
	printf '\n    location / {\n'
	if [[ -z $S_MAINT ]]; then printf '        proxy_pass http://bakery-%s;\n' "$S_APP"; fi
	printf '        access_log /var/log/nginx/bakery-%s.access bakery-%s;\n' "$S_APP" "$S_APP"
	if [[ -z $S_MAINT ]]; then
		printf '        proxy_http_version 1.1;\n'
		printf '        proxy_set_header Host $host;\n'
		printf '        proxy_set_header X-Real-IP $remote_addr;\n'
		printf '        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n'
		printf '        proxy_set_header X-Forwarded-Proto $scheme;\n'
		if ((S_WS)); then
			printf '        proxy_set_header Upgrade $http_upgrade;\n'
			printf '        proxy_set_header Connection $bakery_%s_connection;\n' "${S_APP//-/_}"
		fi
		if ((!S_BUFFER)); then printf '        proxy_buffering off;\n'; fi
		if [[ -n $S_RTIME ]]; then printf '        proxy_read_timeout %ss;\n' "$S_RTIME"; fi
		if [[ -n $S_STIME ]]; then printf '        proxy_send_timeout %ss;\n' "$S_STIME"; fi
		if [[ -n $S_BODY ]]; then printf '        client_max_body_size %s;\n' "$S_BODY"; fi
	fi
	printf '        add_header X-Bakery-Slot %s/%s always;\n' "$S_APP" "$S_SLOT"
	if [[ -n ${1:-} ]]; then
		printf '        add_header X-Bakery-Site %s always;\n' "$1"
		if ((S_HSTS)); then printf '        add_header Strict-Transport-Security "max-age=31536000" always;\n'; fi
	fi
	for i in "${!S_HNAMES[@]}"; do
		printf '        add_header %s "%s" always;\n' "${S_HNAMES[$i]}" "${S_HVALUES[$i]}"
	done
	if [[ -n $S_MAINT ]]; then
		printf '        add_header Retry-After 60 always;\n'
		printf '        default_type text/plain;\n'
		printf '        return 503 "%s\\n";\n' "$S_MAINT"
	fi
	printf '    }\n'
}

# site_token HOST... — nodefiles.SiteToken: 12 hex of sha256("LEN:HOSTS;").
site_token() {
	local s="$*" h
	h=$(printf '%d:%s;' "${#s}" "$s" | sha256sum)
	printf '%s' "${h:0:12}"
}

# render_site — the app's nginx site from the S_* globals (reconciler/nodefiles.NginxSite).
# shellcheck disable=SC2016 # nginx variables, not shell ones
render_site() {
	local plain=() secure=() h c has token
	for h in "${S_HOSTS[@]}"; do
		has=0
		if ((S_TLS)); then for c in "${S_CERTS[@]}"; do [[ $c == "$h" ]] && has=1; done; fi
		if ((has)); then secure+=("$h"); else plain+=("$h"); fi
	done
	if [[ ${#S_HOSTS[@]} -eq 0 ]]; then plain=("$S_APP"); fi
	printf '# Generated by Bakery for app %s; do not edit: drift is repaired.\n' "$S_APP"
	printf 'upstream bakery-%s {\n    server 127.0.0.1:%s max_fails=0;\n}\n' "$S_APP" "$S_PORT"
	printf '\nlog_format bakery-%s $msec|$status|$body_bytes_sent|$request_time;\n' "$S_APP"
	if ((S_WS)); then
		printf '\nmap $http_upgrade $bakery_%s_connection {\n    default upgrade;\n    ~^$ close;\n}\n' "${S_APP//-/_}"
	fi
	if [[ ${#plain[@]} -gt 0 ]]; then
		printf '\nserver {\n    listen %s;\n    server_name %s;\n' "$S_LISTEN" "${plain[*]}"
		if ((S_TLS)); then site_challenge; fi
		site_proxy
		printf '}\n'
	fi
	if [[ ${#secure[@]} -gt 0 ]]; then
		printf '\nserver {\n    listen %s;\n    server_name %s;\n' "$S_LISTEN" "${secure[*]}"
		site_challenge
		printf '\n    location / {\n'
		if [[ $S_TLSPORT == 443 ]]; then
			printf '        return 301 https://$host$request_uri;\n'
		else
			printf '        return 301 https://$host:%s$request_uri;\n' "$S_TLSPORT"
		fi
		printf '    }\n}\n'
		token=$(site_token "${secure[@]}")
		for h in "${secure[@]}"; do
			printf '\nserver {\n    listen %s ssl http2;\n    server_name %s;\n' "$S_TLSPORT" "$h"
			printf '    ssl_certificate /etc/letsencrypt/live/%s/fullchain.pem;\n' "$h"
			printf '    ssl_certificate_key /etc/letsencrypt/live/%s/privkey.pem;\n' "$h"
			printf '    ssl_protocols TLSv1.2 TLSv1.3;\n'
			site_proxy "$token"
			printf '}\n'
		done
	fi
	local i to
	for i in "${!S_RFROM[@]}"; do
		has=0
		if ((S_TLS)); then for c in "${S_CERTS[@]}"; do [[ $c == "${S_RTO[$i]}" ]] && has=1; done; fi
		if ((has)); then
			to="https://${S_RTO[$i]}"
			if [[ $S_TLSPORT != 443 ]]; then to+=":$S_TLSPORT"; fi
		else
			to="http://${S_RTO[$i]}"
			if [[ $S_LISTEN != 80 ]]; then to+=":$S_LISTEN"; fi
		fi
		printf '\nserver {\n    listen %s;\n    server_name %s;\n' "$S_LISTEN" "${S_RFROM[$i]}"
		printf '\n    location / {\n        return 301 %s$request_uri;\n    }\n}\n' "$to"
	done
}

# build APP RELEASE < SCRIPT — run SCRIPT (the build and test steps, from the control
# plane: it never runs as root) as the app's user in the release directory, with a clean
# environment (the script exports what it needs), no new privileges and in a scope of its
# own, so that whatever it leaves running is stopped when it ends or its caller goes away.
# For the build only, the release (checked out by bakery-agent) belongs to the app's user;
# afterwards it belongs to bakery-agent again and is read-only to the app.
run_build() {
	local app=$1 rel="/var/lib/bakery/apps/$1/releases/$2" script=$3 scope parent rc=0
	[[ $(cat /proc/sys/fs/protected_hardlinks 2>/dev/null) == 1 ]] ||
		refuse "build: fs.protected_hardlinks must be 1 (a hard link could hand a root file to the app)"
	# Work on the directory inode we entered, and only if it is the real release directory
	# (no symlink anywhere on its path) and bakery-agent's or already the app's.
	cd -P -- "$rel" 2>/dev/null || fail "build: no release directory $rel"
	[[ $(pwd -P) == "$rel" ]] || refuse "build: $rel is not a plain directory"
	case $(stat -c %U .) in "$AGENT" | "$APP_USER") ;; *) refuse "build: $rel is not bakery-agent's" ;; esac
	# chown -R -P never follows a symlink and works relative to the directories it opened.
	chown -R -P --from="$AGENT" -- "$APP_USER:$APP_USER" .
	scope="bakery-build-$app-$$"
	parent=$PPID
	# A signal (sudo relays the caller's) must not end us before the cleanup below.
	stop=0
	trap 'stop=1' TERM INT HUP
	systemd-run --scope --quiet --collect --unit="$scope" -- \
		setpriv --reuid="$APP_USER" --regid="$APP_USER" --clear-groups --no-new-privs --reset-env \
		-- /bin/sh -s <"$script" &
	local child=$!
	# The caller (bakery-agent) may not signal us, nor the build's processes: stop the
	# build on a signal or when our sudo is gone (a cancelled SSH command's watcher
	# kills it: sudo runs with bakery-agent's real uid in the command's process group).
	while kill -0 "$child" 2>/dev/null; do
		if ((stop)) || ! kill -0 "$parent" 2>/dev/null; then
			systemctl stop "$scope.scope" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	wait "$child" || rc=$?
	systemctl stop "$scope.scope" 2>/dev/null || true
	if ((stop)) && ((rc == 0)); then rc=1; fi
	chown -R -P --from="$APP_USER" -- "$AGENT:$AGENT" .
	# bakery-agent reads the built marker: it must not be a link the build
	# pointed at a file of bakery-agent's.
	if [[ -L .bakery-built || ( -e .bakery-built && ! -f .bakery-built ) ]]; then rm -rf -- .bakery-built; rc=1; fi
	return "$rc"
}

# run APP SLOT RELEASE SCRIPT TIMEOUT TTY — run the app's SCRIPT (a file bakery-agent
# wrote in the app's run directory: a release command, a one-off command) as the app's
# user in the release directory, with the slot's environment and the sandbox of its unit,
# in a transient unit of its own: whatever the command leaves running is stopped with it.
# The environment file is read by systemd, so no secret passes through here or reaches a
# command line. TIMEOUT bounds it (exit 124); it stops too when our sudo is gone.
run_script() {
	local app=$1 slot=$2 release=$3 script=$4 timeout=$5 tty=$6 user unit rel f line rc=0 props=()
	user=$(app_user "$app")
	getent passwd "$user" >/dev/null || fail "run: the app has no user yet (no slot installed)"
	rel="/var/lib/bakery/apps/$app/releases/$release"
	f="/var/lib/bakery/apps/$app/run/$script"
	[[ -d $rel && ! -L $rel ]] || fail "run: no release directory $rel"
	[[ -f $f && ! -L $f ]] || fail "run: no script $f"
	[[ -f /etc/bakery/env/bakery-$app-$slot.env ]] || fail "run: no environment file for slot $slot"
	APP_USER=$user
	ensure_persist "$app"
	unit="bakery-$app-run-$$"
	props=(-p "User=$user" -p "Group=$user" -p "WorkingDirectory=$rel"
		-p "EnvironmentFile=/etc/bakery/env/bakery-$app-$slot.env"
		-p "ReadWritePaths=$APPS_DATA/$app/data" -p "RuntimeMaxSec=$((timeout + 5))"
		-p "SyslogIdentifier=bakery-$app-run")
	while IFS= read -r line; do props+=(-p "$line"); done < <(limit_lines "$app" "$release"; sandbox_lines)
	local parent=$PPID start=$SECONDS timedout=0 child
	stop=0
	trap 'stop=1' TERM INT HUP
	if ((tty)); then
		systemd-run --wait --collect --quiet --pty --unit="$unit" "${props[@]}" -- /bin/sh "$f" <&0 &
	else
		systemd-run --wait --collect --quiet --pipe --unit="$unit" "${props[@]}" -- /bin/sh "$f" </dev/null &
	fi
	child=$!
	# Like build: the caller may not signal us; stop the unit on a signal, when our sudo is
	# gone or after TIMEOUT.
	while kill -0 "$child" 2>/dev/null; do
		if ((SECONDS - start >= timeout)); then timedout=1; fi
		if ((stop || timedout)) || ! kill -0 "$parent" 2>/dev/null; then
			systemctl stop "$unit.service" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	wait "$child" || rc=$?
	systemctl stop "$unit.service" 2>/dev/null || true
	if ((timedout)); then
		printf 'bakery-sudo: run: %s timed out after %s s\n' "$script" "$timeout" >&2
		rc=124
	elif ((stop)) && ((rc == 0)); then rc=1; fi
	logger -t bakery-sudo -- "run $app $slot $script: exit $rc" 2>/dev/null || true
	return "$rc"
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
case $VERB in
render-unit | render-proc | render-site | render-sched | check | verbs) ;; # no root, nothing written
*)
	[[ $(id -u) == 0 ]] || fail "must run as root (sudo -n $0 ...)"
	logger -t bakery-sudo -- "${SUDO_USER:-root}: ${VERB} $*" 2>/dev/null || true
	;;
esac

case $VERB in
unit-install)
	unit_args "$@"
	ensure_app "$1"
	ensure_persist "$1"
	tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
	render_unit "${U_ARGS[@]}" >"$tmp"
	install_atomic "$tmp" "$UNIT_DIR/bakery-$1-$2.service"
	;;
render-unit)
	unit_args "$@"
	render_unit "${U_ARGS[@]}"
	;;
render-sched)
	sched_args "$@"
	render_sched_timer "${S_ARGS[@]}"
	render_sched_service "${S_ARGS[@]}"
	;;
sched-install)
	sched_args "$@"
	set -- "${S_ARGS[@]}"
	[[ $7 == docker ]] || { ensure_app "$1"; ensure_persist "$1"; }
	base="$UNIT_DIR/bakery-$1-sched-$2"
	sched_ours "$1" "$2" "$base.timer" && sched_ours "$1" "$2" "$base.service" ||
		refuse "sched-install: $base.timer/.service exist and are not schedule $2 of app $1"
	tmpt=$(mktemp); tmps=$(mktemp); trap 'rm -f "$tmpt" "$tmps"' EXIT
	render_sched_timer "$@" >"$tmpt"
	render_sched_service "$@" >"$tmps"
	rs=$(install_atomic "$tmps" "$base.service")
	rt=$(install_atomic "$tmpt" "$base.timer")
	if [[ $rs == changed || $rt == changed ]]; then systemctl daemon-reload; fi
	# One reload only (enable would do another); a changed calendar takes effect on
	# restart; an unchanged active timer is left alone.
	t="bakery-$1-sched-$2.timer"
	systemctl is-enabled --quiet -- "$t" 2>/dev/null || systemctl enable --no-reload -- "$t" >/dev/null 2>&1
	if [[ $rt == changed ]]; then systemctl restart -- "$t"
	elif ! systemctl is-active --quiet -- "$t"; then systemctl start -- "$t"; fi
	if [[ $rs == changed || $rt == changed ]]; then echo changed; else echo unchanged; fi
	;;
sched-remove)
	[[ $# -eq 1 || $# -eq 2 ]] || refuse "sched-remove takes APP [NAME]"
	check_name app "$1"
	if [[ $# -eq 2 ]]; then
		check_sched_name "$2"
		sched_ours "$1" "$2" "$UNIT_DIR/bakery-$1-sched-$2.timer" && sched_ours "$1" "$2" "$UNIT_DIR/bakery-$1-sched-$2.service" ||
			refuse "sched-remove: bakery-$1-sched-$2 is not schedule $2 of app $1"
		sched_remove "$1" "$2"
	else
		for f in "$UNIT_DIR/bakery-$1-sched-"*.timer "$UNIT_DIR/bakery-$1-sched-"*.service; do
			[[ -f $f ]] || continue
			n=${f#"$UNIT_DIR/bakery-$1-sched-"}; n=${n%.*}
			[[ ${#n} -le 20 && $n =~ $NAME_RE ]] || continue
			sched_ours "$1" "$n" "$f" || continue
			sched_remove "$1" "$n"
		done
	fi
	systemctl daemon-reload
	;;
unit-remove)
	nargs 2 $# "$VERB"; check_name app "$1"; check_slot "$2"
	remove_file "$UNIT_DIR/bakery-$1-$2.service"
	# A unit that ended failed would stay listed (not-found, failed) until reset.
	systemctl reset-failed -- "bakery-$1-$2.service" >/dev/null 2>&1 || true
	;;
proc-install)
	proc_args "$@"
	ensure_app "$1"
	ensure_persist "$1"
	tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
	render_proc "${P_ARGS[@]}" >"$tmp"
	install_atomic "$tmp" "$UNIT_DIR/bakery-$1-$2-$3@.service"
	;;
render-proc)
	proc_args "$@"
	render_proc "${P_ARGS[@]}"
	;;
proc-scale)
	nargs 4 $# "$VERB"; check_name app "$1"; check_slot "$2"; check_proc "$3"; check_replicas "$4"
	[[ $4 == 0 || -f "$UNIT_DIR/bakery-$1-$2-$3@.service" ]] || fail "proc-scale: no unit bakery-$1-$2-$3@.service"
	want=() drop=()
	for ((i = 1; i <= $4; i++)); do want+=("bakery-$1-$2-$3@$i.service"); done
	for i in $(proc_instances "$1" "$2" "$3"); do ((i <= $4)) || drop+=("bakery-$1-$2-$3@$i.service"); done
	if ((${#drop[@]} > 0)); then
		systemctl disable --quiet -- "${drop[@]}" 2>/dev/null || true
		systemctl stop -- "${drop[@]}"
	fi
	if ((${#want[@]} > 0)); then
		systemctl reset-failed -- "${want[@]}" 2>/dev/null || true
		systemctl enable --quiet -- "${want[@]}" 2>/dev/null || true
		systemctl start -- "${want[@]}"
	fi
	;;
proc-remove)
	[[ $# -eq 2 || $# -eq 3 ]] || refuse "proc-remove takes APP SLOT [PROC]"
	check_name app "$1"; check_slot "$2"
	if [[ $# -eq 3 ]]; then check_proc "$3"; procs=("$3"); else mapfile -t procs < <(slot_procs "$1" "$2"); fi
	for p in "${procs[@]}"; do
		units=()
		for i in $(proc_instances "$1" "$2" "$p"); do units+=("bakery-$1-$2-$p@$i.service"); done
		if ((${#units[@]} > 0)); then
			systemctl disable --quiet -- "${units[@]}" 2>/dev/null || true
			systemctl stop -- "${units[@]}" || true
			# A failed instance would stay loaded (and listed) without this.
			systemctl reset-failed -- "${units[@]}" 2>/dev/null || true
		fi
		printf '%s ' "$p"
		remove_file "$UNIT_DIR/bakery-$1-$2-$p@.service"
	done
	;;
env-install)
	nargs 2 $# "$VERB"; check_name app "$1"; check_slot "$2"
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
	nargs 2 $# "$VERB"; check_name app "$1"; check_slot "$2"
	remove_file "/etc/bakery/env/bakery-$1-$2.env"
	;;
systemctl)
	nargs 3 $# "$VERB"
	case $1 in
	start | stop | restart | reload | enable | disable | show | status | is-active | is-enabled | is-failed | reset-failed) ;;
	*) refuse "systemctl verb '$1' not allowed" ;;
	esac
	check_name app "$2"; check_slot "$3"
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
	site_args "$@"
	dest="$NGINX_DIR/bakery-$1.conf"
	tmp=$(mktemp); backup=$(mktemp); trap 'rm -f "$tmp" "$backup"' EXIT
	render_site >"$tmp"
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
render-site)
	site_args "$@"
	render_site
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
	# An optional unit selector comes last: --process PROC.
	unit=""
	if [[ $# -ge 4 && ${*: -2:1} == --process ]]; then
		check_name app "$1"; check_slot "$2"; check_proc "${*: -1}"
		unit="bakery-$1-$2-${*: -1}@*.service"
		set -- "${@:1:$#-2}"
	fi
	[[ $# -ge 2 && $# -le 4 ]] || refuse "journal takes APP SLOT|sched-NAME [LINES] [follow] [--process PROC]"
	check_name app "$1"
	case $2 in
	sched-*) check_sched_name "${2#sched-}" ;;
	*) check_slot "$2" ;;
	esac
	unit=${unit:-bakery-$1-$2.service}
	lines=${3:-200}
	[[ $lines =~ ^[0-9]{1,6}$ ]] || refuse "invalid line count '$lines'"
	if [[ $# -eq 4 ]]; then
		[[ $4 == follow ]] || refuse "journal: 4th argument must be 'follow'"
		# The caller's signals do not reach us: sudo does not relay a signal
		# sent from its own process group, and the caller (bakery-agent) may
		# not signal root's processes. So follow only while our sudo lives:
		# when the session ends, the caller's watcher kills sudo, and we stop.
		journalctl --no-pager -o short-iso -n "$lines" -f -u "$unit" &
		jp=$!
		parent=$PPID
		while kill -0 "$jp" 2>/dev/null; do
			if ! kill -0 "$parent" 2>/dev/null; then kill "$jp" 2>/dev/null; break; fi
			sleep 0.5
		done
		wait "$jp" 2>/dev/null || true
		exit 0
	fi
	exec journalctl --no-pager -o short-iso -n "$lines" -u "$unit"
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
build)
	nargs 2 $# "$VERB"; check_name app "$1"; check_release "$2"
	ensure_app "$1"
	tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
	head -c $((MAX_CONTENT + 1)) >"$tmp"
	[[ $(stat -c %s "$tmp") -le $MAX_CONTENT ]] || refuse "build script larger than $MAX_CONTENT bytes"
	run_build "$1" "$2" "$tmp"
	;;
run)
	[[ $# -ge 5 ]] || refuse "run takes APP SLOT RELEASE SCRIPT TIMEOUT [--tty] [LIMITS]"
	check_name app "$1"; check_slot "$2"; check_release "$3"; check_script "$4"; check_seconds "$5"
	tty=0
	if [[ $# -ge 6 && $6 == --tty ]]; then tty=1; limit_opts "${@:7}"; else limit_opts "${@:6}"; fi
	rc=0
	run_script "$1" "$2" "$3" "$4" "$5" "$tty" || rc=$?
	exit "$rc"
	;;
app-remove)
	[[ $# -eq 1 || ($# -eq 2 && $2 == --keep-data) ]] || refuse "app-remove takes APP [--keep-data]"
	check_name app "$1"
	for s in blue green; do
		if systemctl is-active --quiet "bakery-$1-$s.service"; then refuse "app-remove: bakery-$1-$s.service is active"; fi
		for p in $(slot_procs "$1" "$s"); do
			for i in $(proc_instances "$1" "$s" "$p"); do
				if systemctl is-active --quiet "bakery-$1-$s-$p@$i.service"; then refuse "app-remove: bakery-$1-$s-$p@$i.service is active"; fi
			done
		done
	done
	user=$(app_user "$1")
	if [[ $# -eq 2 && -d $APPS_DATA/$1/persistent && ! -L $APPS_DATA/$1/persistent ]]; then
		# Keep the persistent directories and the user owning them (its uid stays theirs).
		pkill -KILL -u "$user" 2>/dev/null || true
		find "${APPS_DATA:?}/$1" -mindepth 1 -maxdepth 1 ! -name persistent -exec rm -rf -- {} +
		echo removed, data kept
		exit 0
	fi
	if getent passwd "$user" >/dev/null; then
		pkill -KILL -u "$user" 2>/dev/null || true
		userdel "$user" || fail "cannot remove user $user"
	fi
	rm -rf -- "${APPS_DATA:?}/$1"
	echo removed
	;;
data-usage)
	nargs 1 $# "$VERB"; check_name app "$1"
	du_line() { # PATH DIR
		local k
		k=$(timeout 10 du -sk --one-file-system -- "$2" 2>/dev/null | cut -f1) || k=
		printf 'persistent %s %s\n' "$1" "${k:--}"
	}
	for d in "$APPS_DATA/$1/persistent"/*; do
		[[ -d $d && ! -L $d ]] || continue
		p=${d##*/}; p=${p//+//}
		(check_persist "$p") 2>/dev/null || continue
		du_line "$p" "$d"
	done
	if command -v docker >/dev/null 2>&1; then
		while read -r v p; do
			[[ -n $v ]] && (check_persist "$p") 2>/dev/null || continue
			m=$(docker volume inspect --format '{{.Mountpoint}}' -- "$v" 2>/dev/null) || continue
			du_line "$p" "$m"
		done < <(timeout 10 docker volume ls -q --filter "label=bakery.app=$1" 2>/dev/null | while read -r v; do
			printf '%s %s\n' "$v" "$(docker volume inspect --format '{{index .Labels "bakery.path"}}' -- "$v" 2>/dev/null)"
		done)
	fi
	;;
check)
	nargs 2 $# "$VERB"
	case $1 in
	app) check_name app "$2" ;;
	slot) check_slot "$2" ;;
	port) check_port "$2" ;;
	release) check_release "$2" ;;
	seconds) check_seconds "$2" ;;
	host) check_host "$2" ;;
	cert-host) check_domain "$2" ;;
	process) check_proc "$2" ;;
	replicas) check_replicas "$2" ;;
	script) check_script "$2" ;;
	sched-name) check_sched_name "$2" ;;
	concurrency) check_concurrency "$2" ;;
	runtime) check_runtime "$2" ;;
	calendar) check_calendar "$2" ;;
	header-name) check_header_name "$2" ;;
	text) check_text "$2" ;;
	body-size) check_body_size "$2" ;;
	persist) check_persist "$2" ;;
	memory) check_memory "$2" ;;
	cpu) check_cpu "$2" ;;
	tasks) check_tasks "$2" ;;
	*) refuse "unknown parameter kind '$1'" ;;
	esac
	echo ok
	;;
verbs)
	echo unit-install render-unit unit-remove proc-install render-proc proc-scale proc-remove sched-install render-sched sched-remove env-install env-remove systemctl daemon-reload nginx-site-install render-site nginx-site-remove nginx-test nginx-reload journal certbot-certonly certbot-renew cert-info build run app-remove data-usage check verbs
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
	# The apps' own data directories (bakery-sudo creates one per app, owned by the app's
	# user): root-owned, so that no symlink of bakery-agent's can redirect the helper.
	ensure_dir 755 root:root /var/lib/bakery-apps
	write_logrotate
	write_sshd_dropin

	say "done: $CHANGES change(s)"
	echo bakery-ready
}

# stdin is the script itself when piped into `bash -s`: keep children away from it.
main "$@" </dev/null
