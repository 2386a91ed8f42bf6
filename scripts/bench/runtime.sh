#!/usr/bin/env bash
# runtime.sh - berth-runtime against runc and crun (Debian's) in one interleaved run.
# Env: BENCH_RUNS (30), BENCH_ROUNDS (5), BENCH_QUICK=1 for a smoke run.
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
cd "$TOP"
runs="${BENCH_RUNS:-30}" rounds="${BENCH_ROUNDS:-5}" reps=3
if [[ "${BENCH_QUICK:-0}" == 1 ]]; then runs=6 rounds=2 reps=1; fi
go build -o .cache/bench/runtimebench ./hack/runtimebench
exec .cache/bench/runtimebench -runs "$runs" -rounds "$rounds" -conc-reps "$reps" -berth bin/berth-runtime -anchors crun,runc
