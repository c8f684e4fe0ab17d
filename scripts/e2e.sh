#!/usr/bin/env bash
# Boots N real test nodes (scripts/testnodes.sh), runs the end-to-end tests
# (Go tests behind the `e2e` build tag) against them, and tears the nodes
# down again — also when the tests fail or the run is interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}
cleanup() { bash scripts/testnodes.sh down || true; }
trap cleanup EXIT
start=$(date +%s%N)
bash scripts/testnodes.sh up "$n"
echo "e2e: $n test nodes up in $(( ($(date +%s%N) - start) / 1000000 )) ms"
# Only the packages that have end-to-end tests (files behind the e2e tag).
pkgs=$(grep -rl --include='*_test.go' '^//go:build e2e' . | xargs -n1 dirname | sort -u)
[ -n "$pkgs" ] || { echo "e2e: no end-to-end tests found" >&2; exit 1; }
# shellcheck disable=SC2086
go test -tags e2e -race -count=1 -timeout 30m -run 'E2E' $pkgs
