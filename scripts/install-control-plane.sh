#!/usr/bin/env bash
# install-control-plane.sh — install Bakery's control plane on a Debian/Ubuntu server.
#
# Usage (as root):
#   install-control-plane.sh [--binary PATH | --source DIR] [options]
#   install-control-plane.sh --uninstall [--purge]
#
# What it does (every step is idempotent: running it again changes only what differs,
# and restarts the service only when its binary, unit or environment changed):
#   - installs the bakery binary as /usr/local/bin/bakery: the one given with --binary,
#     else one built with the Go toolchain from --source (default: the checkout this
#     script is in);
#   - creates the system user `bakery` and its data directory (default /var/lib/bakery-server, 0700);
#   - writes /etc/bakery/bakery.env (root 0600): listen address, data directory, a
#     generated encryption key (kept on later runs), the database URL with --postgres;
#   - writes a hardened systemd unit /etc/systemd/system/bakery.service and starts it;
#   - with --nginx HOST: an nginx site proxying HOST to the server (SSE streams unbuffered),
#     and with --certbot-email also a certificate from certbot (--acme-server for a non-default CA);
#   - with --postgres: a local PostgreSQL with a `bakery` role and database, reached over
#     the local socket with peer authentication (no password anywhere).
#
# --uninstall stops and removes the service, unit, nginx site and binary, and keeps the
# data directory, /etc/bakery/bakery.env (with the encryption key) and the database;
# --uninstall --purge removes those too.
#
# Options:
#   --binary PATH          bakery binary to install
#   --source DIR           build from this checkout with `go build` (when no --binary)
#   --data-dir DIR         data directory (default /var/lib/bakery-server; not /var/lib/bakery, which
#                          is where a node keeps its apps: a control plane may also be a node)
#   --listen ADDR          address the server listens on (default 127.0.0.1:8080)
#   --public-url URL       URL nodes and users reach the server at (default: http(s)://HOST
#                          with --nginx)
#   --nginx HOST           put nginx in front, serving HOST
#   --certbot-email EMAIL  get a TLS certificate for HOST with certbot --nginx
#   --acme-server URL      ACME directory for certbot (default Let's Encrypt)
#   --postgres             use a local PostgreSQL (installed with apt when missing)
#   --git-safe-directory PATH
#                          trust a local source repository owned by another user (git refuses
#                          those: "detected dubious ownership"); repeatable; written to the
#                          bakery user's ~/.gitconfig (in the data directory)
#   --no-start             install everything but do not (re)start the service
#   --uninstall [--purge]  see above
set -euo pipefail

PROG=install-control-plane
BIN=/usr/local/bin/bakery
UNIT=/etc/systemd/system/bakery.service
ENVFILE=/etc/bakery/bakery.env
NGINX_SITE=/etc/nginx/conf.d/bakery.conf
USER_NAME=bakery

binary="" source_dir="" data_dir=/var/lib/bakery-server listen=127.0.0.1:8080 public_url=""
nginx_host="" certbot_email="" acme_server="" postgres=0 start=1 uninstall=0 purge=0
safe_dirs=()

die() { echo "$PROG: error: $*" >&2; exit 1; }
say() { echo "$PROG: $*"; }

while (($#)); do
	case $1 in
	--binary) binary=${2:?--binary needs a path}; shift ;;
	--source) source_dir=${2:?--source needs a directory}; shift ;;
	--data-dir) data_dir=${2:?--data-dir needs a directory}; shift ;;
	--listen) listen=${2:?--listen needs host:port}; shift ;;
	--public-url) public_url=${2:?--public-url needs a URL}; shift ;;
	--nginx) nginx_host=${2:?--nginx needs a host name}; shift ;;
	--certbot-email) certbot_email=${2:?--certbot-email needs an address}; shift ;;
	--acme-server) acme_server=${2:?--acme-server needs a URL}; shift ;;
	--postgres) postgres=1 ;;
	--git-safe-directory) safe_dirs+=("${2:?--git-safe-directory needs a path}"); shift ;;
	--no-start) start=0 ;;
	--uninstall) uninstall=1 ;;
	--purge) purge=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done

[[ $(id -u) == 0 ]] || die "run as root"
((purge == 0 || uninstall == 1)) || die "--purge goes with --uninstall"

# Values written into config files are checked, so that none can break out of its line.
[[ $data_dir =~ ^/[A-Za-z0-9._/-]+$ && $data_dir != *..* && $data_dir != / ]] || die "--data-dir must be an absolute path of letters, digits, . _ - and /"
[[ ${data_dir%/} != /var/lib/bakery && ${data_dir%/} != /var/lib/bakery/* ]] ||
	die "--data-dir must not be /var/lib/bakery: that is where a node keeps its apps (owned by bakery-agent)"
listen_re='^[][A-Za-z0-9.:-]*:[0-9]+$'
[[ $listen =~ $listen_re ]] || die "--listen must be host:port"
[[ -z $nginx_host || $nginx_host =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ ]] || die "--nginx must be a lower-case host name"
[[ -z $certbot_email || $certbot_email =~ ^[^@[:space:]\'\"\\]+@[^@[:space:]\'\"\\]+\.[^@[:space:]\'\"\\]+$ ]] || die "--certbot-email is not an email address"
[[ -z $certbot_email || -n $nginx_host ]] || die "--certbot-email needs --nginx HOST"
[[ -z $acme_server || $acme_server =~ ^https://[A-Za-z0-9.:/_-]+$ ]] || die "--acme-server must be an https URL"
url_re='^https?://[][A-Za-z0-9.:/_-]+$'
[[ -z $public_url || $public_url =~ $url_re ]] || die "--public-url must be an http(s) URL"

for d in "${safe_dirs[@]}"; do
	[[ $d =~ ^/[A-Za-z0-9._/-]+$ && $d != *..* ]] || die "--git-safe-directory must be an absolute path of letters, digits, . _ - and /"
done

changed=0 # set when the binary, unit or env file changed: the service is restarted

# put FILE MODE OWNER < content — write FILE atomically when its content, mode or owner differ.
put() {
	local file=$1 mode=$2 owner=$3 tmp
	tmp=$(mktemp "$(dirname "$file")/.$PROG.XXXXXX")
	cat >"$tmp"
	chmod "$mode" "$tmp"
	chown "$owner" "$tmp"
	if [[ -f $file ]] && cmp -s "$tmp" "$file" && [[ $(stat -c '%a %U:%G' "$file") == "$(stat -c '%a %U:%G' "$tmp")" ]]; then
		rm -f "$tmp"
		return 1
	fi
	mv -f "$tmp" "$file"
	say "wrote $file"
	return 0
}

have_systemd() { [[ -d /run/systemd/system ]]; }

nginx_reload() {
	nginx -t -q || die "nginx -t failed"
	if have_systemd && systemctl is-active -q nginx; then systemctl reload nginx; else systemctl start nginx; fi
}

uninstall_all() {
	if have_systemd; then
		systemctl disable --now bakery.service 2>/dev/null || true
	fi
	rm -f "$UNIT"
	have_systemd && systemctl daemon-reload
	if [[ -f $NGINX_SITE ]]; then
		rm -f "$NGINX_SITE"
		command -v nginx >/dev/null && nginx_reload
	fi
	rm -f "$BIN"
	say "removed the service, unit, nginx site and binary"
	if ((purge == 0)); then
		say "kept $data_dir, $ENVFILE (with the encryption key) and any database: --uninstall --purge removes them"
		return
	fi
	rm -rf -- "$data_dir"
	rm -f "$ENVFILE"
	rmdir /etc/bakery 2>/dev/null || true
	if command -v psql >/dev/null && runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'bakery'" 2>/dev/null | grep -q 1; then
		runuser -u postgres -- dropdb bakery
		runuser -u postgres -- dropuser --if-exists bakery
		say "dropped the bakery database and role"
	fi
	if id "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME"; fi
	say "purged $data_dir, $ENVFILE and the $USER_NAME user"
}

if ((uninstall)); then
	uninstall_all
	exit 0
fi

have_systemd || die "systemd is not running here (PID 1): the control plane runs as a systemd service"

# 1. The binary.
tmpbin=""
if [[ -z $binary ]]; then
	source_dir=${source_dir:-$(cd "$(dirname "$0")/.." && pwd)}
	[[ -f $source_dir/go.mod ]] || die "no --binary given and $source_dir is not a Bakery checkout (no go.mod); pass --binary PATH"
	command -v go >/dev/null || die "no --binary given and no Go toolchain to build one; pass --binary PATH"
	tmpbin=$(mktemp -d)
	trap 'rm -rf "$tmpbin"' EXIT
	say "building bakery from $source_dir"
	(cd "$source_dir" && CGO_ENABLED=0 go build -trimpath -o "$tmpbin/bakery" ./cmd/bakery)
	binary=$tmpbin/bakery
fi
[[ -f $binary && -x $binary ]] || die "--binary $binary is not an executable file"
"$binary" --version >/dev/null || die "$binary does not run: $("$binary" --version 2>&1 | head -1)"
if ! cmp -s "$binary" "$BIN"; then
	install -m 0755 -o root -g root "$binary" "$BIN.new"
	mv -f "$BIN.new" "$BIN"
	say "installed $BIN ($("$BIN" --version))"
	changed=1
fi

# 2. The user and the data directory.
if ! id "$USER_NAME" >/dev/null 2>&1; then
	useradd --system --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin --user-group "$USER_NAME"
	say "created system user $USER_NAME"
fi
install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$data_dir"
if ((${#safe_dirs[@]})); then
	{
		echo "# Written by $PROG (--git-safe-directory): local repositories Bakery may read."
		echo "[safe]"
		for d in "${safe_dirs[@]}"; do echo "	directory = $d"; done
	} | put "$data_dir/.gitconfig" 600 "$USER_NAME:$USER_NAME" || true
fi

# 3. PostgreSQL (optional): a role named like the system user, peer authentication over
# the local socket.
database_url=""
if ((postgres)); then
	if ! command -v psql >/dev/null || ! [[ -d /usr/lib/postgresql ]]; then
		say "installing PostgreSQL"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
	fi
	systemctl enable -q --now postgresql
	for _ in $(seq 1 50); do runuser -u postgres -- psql -qtAc 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
	if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'bakery'" | grep -q 1; then
		runuser -u postgres -- createuser bakery
		say "created PostgreSQL role bakery"
	fi
	if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'bakery'" | grep -q 1; then
		runuser -u postgres -- createdb -O bakery bakery
		say "created PostgreSQL database bakery"
	fi
	database_url="postgres:///bakery?host=/var/run/postgresql"
fi

# 4. The environment file. The encryption key is made once and kept: without it the
# secrets (and the postgres store's SSH key pair) cannot be read.
[[ -d /etc/bakery ]] || install -d -m 0700 -o root -g root /etc/bakery # shared with a node's env files
key=""
if [[ -f $ENVFILE ]]; then
	key=$(sed -n 's/^BAKERY_ENCRYPTION_KEY=//p' "$ENVFILE" | tail -1)
fi
if [[ -z $key ]]; then
	key=$(head -c 32 /dev/urandom | base64)
	say "generated an encryption key (in $ENVFILE; back it up apart from the data)"
fi
if [[ -z $public_url && -n $nginx_host ]]; then
	public_url=http://$nginx_host
	[[ -z $certbot_email ]] || public_url=https://$nginx_host
fi
{
	echo "# Written by $PROG; read by systemd for bakery.service (root 0600)."
	echo "BAKERY_LISTEN=$listen"
	echo "BAKERY_DATA=$data_dir"
	echo "BAKERY_LOG_FORMAT=json"
	[[ -z $public_url ]] || echo "BAKERY_PUBLIC_URL=$public_url"
	[[ -z $database_url ]] || echo "DATABASE_URL=$database_url"
	echo "BAKERY_ENCRYPTION_KEY=$key"
} | put "$ENVFILE" 600 root:root && changed=1

# 5. The unit.
after="network-online.target"
((postgres == 0)) || after="$after postgresql.service"
put "$UNIT" 644 root:root <<EOF && changed=1
# Written by $PROG.
[Unit]
Description=Bakery control plane
Documentation=https://bakery.dev/docs/install
Wants=network-online.target
After=$after

[Service]
Type=simple
User=$USER_NAME
Group=$USER_NAME
EnvironmentFile=$ENVFILE
ExecStart=$BIN server
WorkingDirectory=$data_dir
Environment=HOME=$data_dir
# Graceful stop: SIGTERM lets the server finish requests and the control loop stop
# (rollouts continue from the nodes' state on the next start).
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=45s
Restart=on-failure
RestartSec=2s
UMask=0077

# Hardening: the server needs its data directory, outbound SSH/HTTP and nothing else.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$data_dir
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateIPC=yes
PrivateUsers=yes
ProtectHostname=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
KeyringMode=private
DevicePolicy=closed
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources @mount @debug @cpu-emulation @obsolete @raw-io @reboot @swap @module @clock
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
EOF

# 6. nginx in front (optional).
if [[ -n $nginx_host ]]; then
	if ! command -v nginx >/dev/null; then
		say "installing nginx"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null
	fi
	upstream=$listen
	[[ $upstream != :* ]] || upstream=127.0.0.1$upstream
	if put "$NGINX_SITE" 644 root:root <<EOF; then
# Written by $PROG: the Bakery control plane's API and UI.
server {
    listen 80;
    listen [::]:80;
    server_name $nginx_host;
    client_max_body_size 8m;
    location / {
        proxy_pass http://$upstream;
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        # Log and event streams (SSE) must not wait in a buffer.
        proxy_buffering off;
        proxy_read_timeout 1h;
    }
}
EOF
		nginx_reload
	fi
	if [[ -n $certbot_email ]]; then
		if ! command -v certbot >/dev/null; then
			say "installing certbot"
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q certbot python3-certbot-nginx >/dev/null
		fi
		args=(--nginx -d "$nginx_host" -m "$certbot_email" --agree-tos --non-interactive --redirect --keep-until-expiring)
		[[ -z $acme_server ]] || args+=(--server "$acme_server")
		certbot "${args[@]}"
		nginx_reload
	fi
fi

# 7. Start (or restart when something changed).
systemctl daemon-reload
systemctl enable -q bakery.service
if ((start)); then
	if ((changed)) || ! systemctl is-active -q bakery.service; then
		systemctl restart bakery.service
		say "started bakery.service"
	else
		say "bakery.service is up to date and running"
	fi
	for _ in $(seq 1 100); do
		if curl -fsS -o /dev/null "http://${listen/#:/127.0.0.1:}/readyz" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	systemctl is-active -q bakery.service || die "bakery.service did not start: journalctl -u bakery.service"
	if [[ -f $data_dir/admin-token ]]; then
		say "the first admin token is in $data_dir/admin-token"
	fi
fi
say "done"
