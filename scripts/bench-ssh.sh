#!/usr/bin/env bash
# bench-ssh.sh — Bakery's SSH executor against OpenSSH and Ansible, on
# loopback only, in one run:
#   - Bakery: one warm command over its pool (bootstrap and watcher included),
#     20 concurrent commands over one connection, 100,000 lines streamed into
#     a sink, one command on 20 "hosts" at once (cold: new pool; warm: open
#     connections) — the Go benchmarks in sshexec/bench_test.go;
#   - OpenSSH: fresh `ssh host true`, and `ssh host true` through a
#     ControlMaster;
#   - Ansible: `ansible -m raw -a true` over 20 inventory aliases (if ansible
#     is installed; skipped with a message otherwise).
# and prints the ratios against the targets (warm command <= 0.4x
# ControlMaster; 20 hosts >= 50x faster than Ansible raw; >= 1M lines/s).
#
# Needs root (it creates the user and runs sshd), openssh-server,
# openssh-client and Go; ansible-core optionally. Every remote shell is the
# same: user $BENCH_USER (default benchuser) with bash and Debian's default
# dotfiles from /etc/skel — SSH-FACTS.md: the remote shell's start-up
# dominates, never compare figures taken with different shells.
#
# The machine is usually shared (other tests run at the same time): the
# ControlMaster loop, one warm Ansible run and the Go benchmarks are repeated
# in ROUNDS interleaved rounds, and the results are the medians over the
# rounds, printed with the load average seen during the run.
#
# Environment: BENCH_USER, ROUNDS (5), N_FRESH (20), N_CM (100 per round),
# BENCHTIME (go test -benchtime per round, default 1s), BASELINE (another
# checkout, e.g. a git worktree of main, whose Go benchmarks run in the same
# rounds, for before/after figures under the same load).
set -euo pipefail

BENCH_USER=${BENCH_USER:-benchuser}
N_FRESH=${N_FRESH:-20}
N_CM=${N_CM:-100}
ROUNDS=${ROUNDS:-5}
BENCHTIME=${BENCHTIME:-1s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "bench-ssh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it creates $BENCH_USER and starts sshd)"
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$SSHD" ] || die "sshd not found: apt-get install -y --no-install-recommends openssh-server openssh-client"
command -v ssh >/dev/null || die "ssh not found: apt-get install -y openssh-client"
command -v go >/dev/null || die "go not found"

if ! id "$BENCH_USER" >/dev/null 2>&1; then
	# -p '*': no password but not locked (sshd with UsePAM no refuses
	# locked accounts); -m copies Debian's /etc/skel dotfiles.
	useradd --create-home --shell /bin/bash -p '*' "$BENCH_USER"
fi
mkdir -p /run/sshd

work=$(mktemp -d /tmp/bench-ssh.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	for s in "$work"/cp/* "$work/cm"; do
		if [ -S "$s" ]; then ssh -o ControlPath="$s" -O exit dummy >/dev/null 2>&1 || true; fi
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$work/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$work/id_ed25519"
install -m 644 "$work/id_ed25519.pub" "$work/authorized_keys"

port_free() { ! (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; } # port [address]
pick_port() {
	local p
	for p in $(seq "$1" $(($1 + 200))); do
		if port_free "$p"; then echo "$p"; return; fi
	done
	die "no free port near $1"
}

# Two sshds (at most 16 listen addresses each): 127.0.0.1-10 and 127.0.0.11-20,
# so that 20 aliases are 20 distinct hosts with their own connections.
start_sshd() { # name port first-address
	local name=$1 port=$2 first=$3 i
	{
		echo "Port $port"
		for i in $(seq "$first" $((first + 9))); do echo "ListenAddress 127.0.0.$i"; done
		cat <<EOF
HostKey $work/host_ed25519
AuthorizedKeysFile $work/authorized_keys
PidFile none
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers $BENCH_USER
MaxSessions 10
MaxStartups 100
LogLevel ERROR
EOF
	} >"$work/$name.conf"
	"$SSHD" -D -e -f "$work/$name.conf" 2>"$work/$name.log" &
	pids+=($!)
	for i in $(seq 200); do
		port_free "$port" "127.0.0.$first" || return 0
		sleep 0.02
	done
	cat "$work/$name.log" >&2
	die "sshd $name did not start"
}
P1=$(pick_port 22200)
start_sshd a "$P1" 1
P2=$(pick_port $((P1 + 1)))
start_sshd b "$P2" 11

hostkey=$(cut -d' ' -f1-2 "$work/host_ed25519.pub")
for i in $(seq 1 10); do echo "[127.0.0.$i]:$P1 $hostkey"; done >"$work/known_hosts"
for i in $(seq 11 20); do echo "[127.0.0.$i]:$P2 $hostkey"; done >>"$work/known_hosts"

SSH=(ssh -F /dev/null -i "$work/id_ed25519" -o UserKnownHostsFile="$work/known_hosts"
	-o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR -p "$P1")
now() { date +%s%N; }
ms() { awk -v ns="$1" -v n="$2" 'BEGIN { printf "%.2f", ns / n / 1e6 }'; }

echo "== OpenSSH fresh connection: ssh host true ($N_FRESH runs)"
"${SSH[@]}" "$BENCH_USER@127.0.0.1" true || die "ssh to the bench sshd failed"
t0=$(now)
for _ in $(seq "$N_FRESH"); do "${SSH[@]}" "$BENCH_USER@127.0.0.1" true; done
fresh_ms=$(ms $(($(now) - t0)) "$N_FRESH")

"${SSH[@]}" -o ControlMaster=yes -o ControlPath="$work/cm" -o ControlPersist=yes -fN "$BENCH_USER@127.0.0.1"
"${SSH[@]}" -o ControlPath="$work/cm" "$BENCH_USER@127.0.0.1" true

have_ansible="" ansible_cold_ms=""
if command -v ansible >/dev/null; then
	have_ansible=yes
	mkdir -p "$work/cp" "$work/ansible-home" "$work/ansible-tmp"
	printf "[defaults]\nhost_key_checking = True\n" >"$work/ansible.cfg"
	{
		echo "[nodes]"
		for i in $(seq 1 10); do echo "h$i ansible_host=127.0.0.$i ansible_port=$P1"; done
		for i in $(seq 11 20); do echo "h$i ansible_host=127.0.0.$i ansible_port=$P2"; done
		echo "[nodes:vars]"
		echo "ansible_user=$BENCH_USER"
		echo "ansible_ssh_private_key_file=$work/id_ed25519"
		echo "ansible_ssh_common_args='-F /dev/null -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes'"
	} >"$work/inventory"
	run_ansible() {
		ANSIBLE_HOME="$work/ansible-home" ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" \
			ANSIBLE_SSH_CONTROL_PATH_DIR="$work/cp" ANSIBLE_CONFIG="$work/ansible.cfg" \
			ANSIBLE_PYTHON_INTERPRETER=auto_silent \
			ansible nodes -i "$work/inventory" -m raw -a true -f 20 >"$work/ansible.out" 2>&1 ||
			{ cat "$work/ansible.out" >&2; die "ansible failed"; }
	}
	echo "== Ansible -m raw -a true over 20 aliases (-f 20): cold run"
	t0=$(now)
	run_ansible
	ansible_cold_ms=$(ms $(($(now) - t0)) 1)
else
	echo "== Ansible not installed (apt-get install ansible-core): skipping the Ansible comparison"
fi

# One line per figure and round: "<name> <ms>" (lines/s for streaming).
: >"$work/rounds.txt"
loads=()
for r in $(seq "$ROUNDS"); do
	echo "== Round $r/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))"
	loads+=("$(cut -d' ' -f1 /proc/loadavg)")
	t0=$(now)
	for _ in $(seq "$N_CM"); do "${SSH[@]}" -o ControlPath="$work/cm" "$BENCH_USER@127.0.0.1" true; done
	echo "cm $(ms $(($(now) - t0)) "$N_CM")" >>"$work/rounds.txt"
	if [ -n "$have_ansible" ]; then
		t0=$(now)
		run_ansible
		echo "ansible_warm $(ms $(($(now) - t0)) 1)" >>"$work/rounds.txt"
	fi
	(cd "$ROOT" && SSHEXEC_TEST_USER="$BENCH_USER" go test -run '^$' \
		-bench 'WarmCommand|Concurrent20|Stream100kLines|TwentyHosts' \
		-benchtime="$BENCHTIME" ./sshexec/) >"$work/go-bench.txt" || { cat "$work/go-bench.txt" >&2; die "go benchmarks failed"; }
	grep '^Benchmark' "$work/go-bench.txt"
	awk '$1 ~ /^Benchmark/ { n = $1; sub(/^Benchmark/, "", n); sub(/-[0-9]+$/, "", n); printf "%s %.3f\n", n, $3 / 1e6
		for (i = 1; i < NF; i++) if ($(i+1) == "lines/s") printf "lines %.0f\n", $i }' "$work/go-bench.txt" >>"$work/rounds.txt"
	if [ -n "${BASELINE:-}" ]; then
		(cd "$BASELINE" && SSHEXEC_TEST_USER="$BENCH_USER" go test -run '^$' \
			-bench 'WarmCommand$|TwentyHosts' -benchtime="$BENCHTIME" ./sshexec/) >"$work/go-base.txt" ||
			{ cat "$work/go-base.txt" >&2; die "baseline benchmarks failed"; }
		sed -n 's/^Benchmark/baseline &/p' "$work/go-base.txt"
		awk '$1 ~ /^Benchmark/ { n = $1; sub(/^Benchmark/, "", n); sub(/-[0-9]+$/, "", n); printf "base_%s %.3f\n", n, $3 / 1e6 }' \
			"$work/go-base.txt" >>"$work/rounds.txt"
	fi
done
med() { # name: the median over the rounds
	awk -v name="$1" '$1 == name { print $2 }' "$work/rounds.txt" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) exit
			printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
cm_ms=$(med cm)
ansible_warm_ms=$(med ansible_warm)
warm_ms=$(med WarmCommand)
idle_ms=$(med WarmCommandIdle)
conc_ms=$(med Concurrent20)
cold20_ms=$(med TwentyHostsCold)
warm20_ms=$(med TwentyHostsWarm)
lines=$(med lines | cut -d. -f1)
if [ -z "$warm_ms" ] || [ -z "$lines" ]; then die "could not read the Go benchmark results"; fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=") ? v <= t : v >= t; print ok ? "met" : "NOT met" }'; }

echo
echo "== Results: medians over $ROUNDS rounds ($(nproc) cores, 1-min load at each round: ${loads[*]})"
printf '%-48s %10s ms\n' "OpenSSH fresh ssh host true" "$fresh_ms"
printf '%-48s %10s ms\n' "OpenSSH ControlMaster ssh host true" "$cm_ms"
printf '%-48s %10s ms\n' "Bakery warm command (back to back)" "$warm_ms"
printf '%-48s %10s ms\n' "Bakery warm command after a pause" "$idle_ms"
printf '%-48s %10s ms\n' "Bakery 20 concurrent commands, one connection" "$conc_ms"
printf '%-48s %10s ms\n' "Bakery one command on 20 hosts, cold pool" "$cold20_ms"
printf '%-48s %10s ms\n' "Bakery one command on 20 hosts, warm pool" "$warm20_ms"
[ -n "$ansible_cold_ms" ] && printf '%-48s %10s ms\n' "Ansible raw on 20 hosts, cold" "$ansible_cold_ms"
[ -n "$ansible_warm_ms" ] && printf '%-48s %10s ms\n' "Ansible raw on 20 hosts, warm (ControlPersist)" "$ansible_warm_ms"
printf '%-48s %10s lines/s\n' "Bakery streaming 100,000 lines into a sink" "$lines"
echo
r=$(ratio "$warm_ms" "$cm_ms")
echo "warm command / ControlMaster        = ${r}x   (target <= 0.4x: $(verdict "$r" "<=" 0.4))"
r=$(ratio "$fresh_ms" "$warm_ms")
echo "fresh ssh / warm command            = ${r}x"
if [ -n "$ansible_warm_ms" ]; then
	r=$(ratio "$ansible_warm_ms" "$warm20_ms")
	echo "Ansible warm / Bakery 20 hosts warm = ${r}x   (target >= 50x: $(verdict "$r" ">=" 50))"
	r=$(ratio "$ansible_cold_ms" "$cold20_ms")
	echo "Ansible cold / Bakery 20 hosts cold = ${r}x   (target >= 50x: $(verdict "$r" ">=" 50))"
fi
echo "streaming                           = $lines lines/s (target >= 1,000,000: $(verdict "$lines" ">=" 1000000))"
if [ -n "${BASELINE:-}" ]; then
	base_warm=$(med base_WarmCommand)
	base_cold20=$(med base_TwentyHostsCold)
	base_warm20=$(med base_TwentyHostsWarm)
	echo
	echo "== Baseline $BASELINE (same rounds)"
	printf '%-48s %10s ms\n' "baseline warm command" "$base_warm"
	printf '%-48s %10s ms\n' "baseline one command on 20 hosts, cold pool" "$base_cold20"
	printf '%-48s %10s ms\n' "baseline one command on 20 hosts, warm pool" "$base_warm20"
	echo "baseline warm command / ControlMaster        = $(ratio "$base_warm" "$cm_ms")x"
	if [ -n "$ansible_warm_ms" ]; then
		echo "Ansible warm / baseline 20 hosts warm        = $(ratio "$ansible_warm_ms" "$base_warm20")x"
		echo "Ansible cold / baseline 20 hosts cold        = $(ratio "$ansible_cold_ms" "$base_cold20")x"
	fi
fi
