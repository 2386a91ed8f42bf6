#!/usr/bin/env bash
# image.sh - `berth image bundle oci:LAYOUT:TAG DIR` against `umoci raw unpack` (Debian's, the anchor)
# on one generated 256 MiB, five-layer image plus a whiteout layer, interleaved; checks both unpack
# the same tree and prints `key: value` lines with the ratio berth/umoci (hack/imagebench).
# Env: BENCH_RUNS (5), BENCH_QUICK=1 for a smoke run (1 run, 32 MiB).
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
cd "$TOP"
runs="${BENCH_RUNS:-5}" size=$((256 << 20))
if [[ "${BENCH_QUICK:-0}" == 1 ]]; then runs=1 size=$((32 << 20)); fi
command -v umoci >/dev/null || { echo "image.sh: umoci not installed (make deps)" >&2; exit 1; }
[[ -x bin/berth ]] || { echo "image.sh: bin/berth not built (make)" >&2; exit 1; }
go build -o .cache/bench/imagebench ./hack/imagebench
exec .cache/bench/imagebench -berth bin/berth -umoci umoci -work .cache/bench/image -runs "$runs" -size "$size"
