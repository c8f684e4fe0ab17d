#!/usr/bin/env bash
# bench-scale.sh — how one control plane's cost grows with the number of
# nodes and deployments, in one run:
#   - one observe cycle over 10, 100 and 500 nodes (each node observed in
#     one SSH round trip, its status written to PostgreSQL): wall time, CPU
#     time and memory of the control plane;
#   - reconcile throughput of 1,000 converged deployments (10 per node on
#     100 nodes): resolve the source, observe, plan nothing, write status.
# The nodes are simulated: in-process SSH servers speaking Bakery's command
# protocol and answering the observe scripts with canned text, in a child
# process so that their CPU and memory are not counted
# (reconciler/internal/simnode says why not hundreds of real sshd).
# PostgreSQL is the throwaway cluster of package pgtest (its CPU is not
# counted either). Figures are the Go benchmarks in
# reconciler/deployment/scale_bench_test.go, printed as a table.
#
# Environment: NODES (10,100,500), DEPLOYMENTS (1000), WORKERS (16: the
# reconciles run at once), COUNT (1: repetitions of each benchmark; the
# table shows every run).
# Needs Go, git and PostgreSQL's server binaries (scripts/install-test-deps.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=${NODES:-10,100,500}
DEPLOYMENTS=${DEPLOYMENTS:-1000}
WORKERS=${WORKERS:-16}
COUNT=${COUNT:-1}
command -v go >/dev/null || { echo "bench-scale: go not found" >&2; exit 1; }
cd "$ROOT"
out=$(BAKERY_BENCH_NODES=$NODES BAKERY_BENCH_DEPLOYMENTS=$DEPLOYMENTS BAKERY_BENCH_WORKERS=$WORKERS \
	go test -run '^$' -bench 'BenchmarkObserveCycle|BenchmarkReconcileConverged' -benchtime=1x -count "$COUNT" \
	-timeout 20m ./reconciler/deployment/ 2>/dev/null)
echo "$out" | grep -E '^(goos|goarch|cpu):' || true
echo "workers: $WORKERS; $(nproc) CPUs"
echo
# metric <line> <unit>: the value before " unit".
metric() { echo "$1" | awk -v u="$2" '{for (i = 2; i <= NF; i++) if ($i == u) {print $(i-1); exit}}'; }
printf '%-28s %10s %10s %14s %10s\n' "observe cycle" "cold ms" "warm ms" "CPU ms/cycle" "RSS MB"
echo "$out" | grep '^BenchmarkObserveCycle/' | while read -r line; do
	name=$(echo "$line" | awk '{print $1}' | sed 's/^BenchmarkObserveCycle\///; s/-[0-9]*$//')
	printf '%-28s %10s %10s %14s %10s\n' "$name" "$(metric "$line" cold-ms)" "$(metric "$line" ms/cycle)" \
		"$(metric "$line" cpu-ms/cycle)" "$(metric "$line" rss-MB)"
done
echo
printf '%-28s %10s %12s %14s %14s %10s\n' "converged reconciles" "ms/cycle" "reconciles/s" "CPU ms/recon" "git CPU ms" "RSS MB"
echo "$out" | grep '^BenchmarkReconcileConverged/' | while read -r line; do
	name=$(echo "$line" | awk '{print $1}' | sed 's/^BenchmarkReconcileConverged\///; s/-[0-9]*$//')
	printf '%-28s %10s %12s %14s %14s %10s\n' "$name" "$(metric "$line" ms/cycle)" "$(metric "$line" reconciles/s)" \
		"$(metric "$line" cpu-ms/reconcile)" "$(metric "$line" git-cpu-ms/reconcile)" "$(metric "$line" rss-MB)"
done
