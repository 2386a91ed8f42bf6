#!/usr/bin/env bash
# registry.sh - `berth registry serve` against the CNCF Distribution registry v3.1.2 (the anchor) in
# one interleaved run: push/pull of a 256 MiB five-layer image and a 200-layer image, manifest GET and
# blob HEAD req/s with p50/p99, peak RSS; prints `key: value` lines with berth/distribution ratios
# (hack/registrybench). Distribution is built once with `go install` into .cache/bin; it is never
# in go.mod and nothing of ours imports it.
# Env: BENCH_ROUNDS (3), BENCH_XFER_ROUNDS (3), BENCH_SECONDS (5), BENCH_CONNS (16), BENCH_QUICK=1
# for a smoke run, DISTRIBUTION_VERSION (v3.1.2).
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
cd "$TOP"
ver="${DISTRIBUTION_VERSION:-v3.1.2}"
dist=.cache/bin/registry
if ! "$dist" --version 2>/dev/null | grep -q " ${ver}\b"; then
  echo "registry.sh: building the Distribution registry $ver into .cache/bin (a few minutes, once)" >&2
  GOBIN="$TOP/.cache/bin" go install "github.com/distribution/distribution/v3/cmd/registry@$ver"
fi
[[ -x bin/berth ]] || { echo "registry.sh: bin/berth not built (make)" >&2; exit 1; }
go build -o .cache/bench/registrybench ./hack/registrybench
args=(-berth bin/berth -distribution "$dist" -rounds "${BENCH_ROUNDS:-3}" -xfer-rounds "${BENCH_XFER_ROUNDS:-3}"
  -seconds "${BENCH_SECONDS:-5}s" -conns "${BENCH_CONNS:-16}")
[[ "${BENCH_QUICK:-0}" == 1 ]] && args+=(-quick)
echo "distribution_version: $ver"
exec .cache/bench/registrybench "${args[@]}"
