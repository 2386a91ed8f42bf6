#!/usr/bin/env bash
# install-deps.sh - install what building, testing and benchmarking berth needs on Debian 12, as root.
# Idempotent: packages already present are not touched, so it is quick after the first run.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH

pkgs=(
  build-essential libc6-dev      # cgo: berth-runtime links its namespace constructor statically
  musl-tools                     # ... against musl, whose start-up is cheaper than static glibc's
  busybox-static                 # root filesystems for tests, benchmarks and the demo
  jq hyperfine time util-linux procps iproute2
  nftables iptables containernetworking-plugins  # CNI tests look at rule sets; Debian's plugins are an anchor
  runc crun                      # the anchors the runtime is measured against
  containerd podman conmon       # real clients that drive berth-runtime in integration tests
  umoci                          # the anchor image unpacking is measured against
  skopeo                         # a real client of berth registry serve in integration tests
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  for i in 1 2 3 4 5; do
    if apt-get install -y -qq --no-install-recommends "${missing[@]}"; then break; fi
    echo "install-deps: apt-get failed (dpkg lock?), retry $i" >&2
    sleep 10
  done
fi
command -v go >/dev/null || { echo "install-deps: Go not found at /usr/local/go/bin" >&2; exit 1; }
# Go modules and the pinned tools (staticcheck, the conformance suites) come through the module proxy.
go mod download
# the 2023 distribution-spec conformance suite is pinned in a module of its own (see its go.mod)
(cd tools/conformance-legacy && go mod download)
# oras and crane, the registry clients internal/registry/clients_test.go drives, pinned in
# tools/clients (see its go.mod), built into .cache/bin when the pin changes
mkdir -p .cache/bin
stamp=".cache/bin/.clients-$(cat tools/clients/go.mod tools/clients/go.sum | sha256sum | cut -c1-16)"
if [[ ! -e "$stamp" || ! -x .cache/bin/oras || ! -x .cache/bin/crane ]]; then
  echo "install-deps: building oras and crane from tools/clients" >&2
  (cd tools/clients && go build -o ../../.cache/bin/ oras.land/oras/cmd/oras github.com/google/go-containerregistry/cmd/crane)
  rm -f .cache/bin/.clients-*
  touch "$stamp"
fi
