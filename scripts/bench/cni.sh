#!/usr/bin/env bash
# cni.sh - ADD and DEL latency of bridge + host-local + portmap + firewall + tuning through libcni
# (hack/cnibench), berth's bin/cni against the reference plugins v1.10.0 (built from the
# github.com/containernetworking/plugins module into .cache/cni-ref, as scripts/conformance/cni.sh
# does) and Debian's /usr/lib/cni, interleaved in one run. Prints `key: value` lines: medians, p95,
# means, ratios (berth / reference; the goal is <= 0.5) and binary sizes.
#
# Usage: scripts/bench/cni.sh   (env: N pods per set, default 100; SPEC_VERSION, default 1.0.0)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(cd "$HERE/../.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
REF_DIR="$TOP/.cache/cni-ref/v1.10.0"
[[ $(id -u) == 0 ]] || { echo "cni bench: needs root" >&2; exit 1; }
[[ -x "$TOP/bin/cni/bridge" ]] || { echo "cni bench: bin/cni not built (make)" >&2; exit 1; }
if [[ ! -x "$REF_DIR/bridge" ]]; then
  mkdir -p "$REF_DIR"
  GOBIN="$REF_DIR" GOFLAGS=-mod=mod go install github.com/containernetworking/plugins/plugins/...@v1.10.0
fi
mkdir -p "$TOP/.cache/bench"
(cd "$TOP" && go build -o .cache/bench/cnibench ./hack/cnibench)
sets=("berth=$TOP/bin/cni" "v1.10.0=$REF_DIR")
[[ -x /usr/lib/cni/bridge ]] && sets+=("debian=/usr/lib/cni")
echo "== CNI bench: ${sets[*]}"
"$TOP/.cache/bench/cnibench" -n "${N:-100}" -version "${SPEC_VERSION:-1.0.0}" "${sets[@]}"
