#!/usr/bin/env bash
# bench-rollout.sh — how long a rollout of a new commit of the example app
# (examples/hello, runtime systemd) takes on real test nodes, by node count,
# with every node preparing at once (issue 18: prepare in parallel, switch in
# batches) and, for comparison, one node after the other as before
# (maxParallel 1, maxUnavailable 1). For each it prints the wall time from
# the push until every node serves the new commit, the rollout's recorded
# step times summed over the nodes by phase, and Bakery's own share: its own
# steps (fetch, install, start, switch, stop, prune) against all step time
# (build and test, health checks and the drain are the app's and the
# strategy's).
#
# The measurement is TestE2EBenchRollout in reconciler/manager (build tag
# e2e), which skips itself unless this script runs it. The test nodes must
# be up: BAKERY_TESTNODES_LAB=N bash scripts/testnodes.sh up 3; node counts
# beyond the lab's nodes add scratch nodes (testnodes.sh add), removed again
# at the end.
#
# The release is built once and shipped by default (spec.build.on one,
# mode "parallel"); mode "each" has every node build it (parallel
# prepare still); "serial" is the old behaviour. pack and ship are
# Bakery's own steps: the archive made on the builder and its transfer to
# and unpacking on each other node; "shipped" is the archive's size.
#
# Usage: scripts/bench-rollout.sh [--serial | --parallel | --each] [--load] [--nodes 1,3,10]
#   --serial     only the old one-node-at-a-time behaviour
#   --parallel   only the new behaviour (default: all three, side by side)
#   --each       only parallel prepare with every node building
#   --load       keep requests going through every node (none may fail)
#   --nodes      node counts (default 1,3; env NODES)
#   --release-mb N   the build also writes N MB of incompressible output
#   --build-cpu-ms N the build also spins a CPU for N ms
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=${NODES:-1,3}
MODES=parallel,each,serial
LOAD=0
while [ $# -gt 0 ]; do
	case $1 in
	--serial) MODES=serial ;;
	--parallel) MODES=parallel ;;
	--each) MODES=each ;;
	--load) LOAD=1 ;;
	--nodes) NODES=${2:?--nodes needs a list such as 1,3,10}; shift ;;
	--release-mb) export BAKERY_BENCH_RELEASE_MB=${2:?}; shift ;;
	--build-cpu-ms) export BAKERY_BENCH_BUILD_CPU_MS=${2:?}; shift ;;
	-h | --help) sed -n '2,34p' "$0"; exit 0 ;;
	*) echo "bench-rollout: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
command -v go >/dev/null || { echo "bench-rollout: go not found" >&2; exit 1; }
cd "$ROOT"
rows=$(mktemp)
log=$(mktemp)
trap 'rm -f "$rows" "$log"' EXIT
if ! BAKERY_BENCH_ROLLOUT_OUT=$rows BAKERY_BENCH_NODES=$NODES BAKERY_BENCH_MODES=$MODES BAKERY_BENCH_LOAD=$LOAD \
	go test -tags e2e -count=1 -timeout 60m -run '^TestE2EBenchRollout$' ./reconciler/manager/ >"$log" 2>&1; then
	grep -E -- '--- FAIL|_test.go:[0-9]+:' "$log" | head -40 >&2 || tail -40 "$log" >&2
	echo "bench-rollout: the measurement failed" >&2
	exit 1
fi
echo "example app (systemd), new commit; $(nproc) CPUs; step times in ms summed over the nodes"
[ -n "${BAKERY_BENCH_RELEASE_MB:-}${BAKERY_BENCH_BUILD_CPU_MS:-}" ] &&
	echo "heavier build: ${BAKERY_BENCH_RELEASE_MB:-0} MB of incompressible output, ${BAKERY_BENCH_BUILD_CPU_MS:-0} ms of CPU"
echo "modes: parallel = build once and ship (build.on one, the default); each = every node builds; serial = one node after the other, each building"
[ "$LOAD" = 1 ] && echo "with requests through every node throughout: 0 failed"
printf '%-9s %5s %8s %6s %6s %5s %6s %7s %6s %6s %6s %6s %6s %6s %8s %9s %6s %8s\n' \
	mode nodes wall-ms fetch build pack ship install start health switch drain stop prune own-ms own/node own-% shipped
sort -t "$(printf '\t')" -k2,2n -k1,1 "$rows" | while IFS=$'\t' read -r mode n wall fetch build install start health switch drain stop prune pack ship bytes; do
	own=$((fetch + install + start + switch + stop + prune + pack + ship))
	total=$((own + build + health + drain))
	printf '%-9s %5s %8s %6s %6s %5s %6s %7s %6s %6s %6s %6s %6s %6s %8s %9s %6s %8s\n' \
		"$mode" "$n" "$wall" "$fetch" "$build" "$pack" "$ship" "$install" "$start" "$health" "$switch" "$drain" "$stop" "$prune" \
		"$own" "$((own / n))" "$((total > 0 ? own * 100 / total : 0))" "$bytes"
done
