#!/usr/bin/env bash
# cni.sh - run the CNI scenario suite (internal/cni/scenario, a Go test package driven through
# libcni and cnitool) against berth's plugins (bin/cni) and, unless --quick, against the reference
# plugins: v1.10.0 built from the github.com/containernetworking/plugins Go module into
# .cache/cni-ref (never imported by berth), and Debian's containernetworking-plugins in /usr/lib/cni.
# The failures of each set are compared with its checked-in list of expected failures, one test per
# line with its cause: cni-berth.expected, cni-v1.10.0.expected, cni-debian.expected. A cause that
# starts with "?" marks an intermittent failure, allowed to fail or pass.
#
# Usage: scripts/conformance/cni.sh [--quick]
#   --quick   berth's plugins only, spec 1.1.0 only (for make test)
# Exit status: 0 when every set fails exactly its expected tests; 1 otherwise.
# Prints `key: value` lines per set: tests, passed, failed, unexpected, fixed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(cd "$HERE/../.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
WORK="${CONFORMANCE_DIR:-$TOP/.cache/conformance/cni}"
REF_VERSION=v1.10.0
REF_DIR="$TOP/.cache/cni-ref/$REF_VERSION"

[[ $(id -u) == 0 ]] || { echo "cni: needs root" >&2; exit 1; }
[[ -x "$TOP/bin/cni/bridge" ]] || { echo "cni: bin/cni not built (make)" >&2; exit 1; }
quick=0
[[ "${1:-}" == --quick ]] && quick=1

mkdir -p "$WORK"
(cd "$TOP" && go test -c -o "$WORK/scenario.test" ./internal/cni/scenario)
# cnitool, pinned in go.mod as a tool
CNITOOL="$(cd "$TOP" && go tool -n cnitool)"
export BERTH_CNITOOL="$CNITOOL"

sets=("berth:$TOP/bin/cni:$HERE/cni-berth.expected")
if ((!quick)); then
  if [[ ! -x "$REF_DIR/bridge" ]]; then
    echo "cni: building the reference plugins $REF_VERSION into $REF_DIR" >&2
    mkdir -p "$REF_DIR"
    GOBIN="$REF_DIR" GOFLAGS=-mod=mod go install "github.com/containernetworking/plugins/plugins/...@$REF_VERSION"
  fi
  sets+=("v1.10.0:$REF_DIR:$HERE/cni-v1.10.0.expected")
  if [[ -x /usr/lib/cni/bridge ]]; then
    sets+=("debian:/usr/lib/cni:$HERE/cni-debian.expected")
  else
    echo "cni: /usr/lib/cni missing (apt-get install containernetworking-plugins); Debian set skipped" >&2
  fi
fi

status=0
for s in "${sets[@]}"; do
  IFS=: read -r name dir expected <<<"$s"
  log="$WORK/$name.log"
  args=(-test.v -test.count=1 -test.timeout=20m)
  ((quick)) && args+=(-test.short)
  echo "== CNI scenarios: $name ($dir)"
  (cd "$TOP/internal/cni/scenario" && BERTH_CNI_PLUGINS="$dir" "$WORK/scenario.test" "${args[@]}") >"$log" 2>&1 || true
  # leaf tests only: a parent fails when one of its subtests does
  { grep -oE -- '--- (PASS|FAIL|SKIP): [^ ]+' "$log" || true; } | awk '{print $2, $3}' | sort -k2 -u >"$WORK/$name.results"
  awk '$1=="FAIL:"{print $2}' "$WORK/$name.results" | sort >"$WORK/$name.failed.all"
  while read -r t; do
    grep -q "^$t/" "$WORK/$name.failed.all" || echo "$t"
  done <"$WORK/$name.failed.all" >"$WORK/$name.failed"
  # A cause that starts with "?" marks an intermittent failure: it may fail or pass.
  { grep -vE '^\s*(#|$)' "$expected" || true; } | awk '$2!="?"{print $1}' | sort -u >"$WORK/$name.expected"
  { grep -vE '^\s*(#|$)' "$expected" || true; } | awk '{print $1}' | sort -u >"$WORK/$name.allowed"
  unexpected=$(comm -23 "$WORK/$name.failed" "$WORK/$name.allowed")
  fixed=$(comm -13 "$WORK/$name.failed" "$WORK/$name.expected")
  ((quick)) && fixed=$(echo "$fixed" | grep '/1.1.0/' || true)
  tests=$(awk '$1!="SKIP:"' "$WORK/$name.results" | wc -l)
  failed=$(wc -l <"$WORK/$name.failed")
  [[ -n "$unexpected" ]] && { echo "unexpected failures ($name):"; echo "$unexpected" | sed 's/^/  /'; grep -E -- "--- FAIL|_test.go:[0-9]+:" "$log" | head -40 | sed 's/^/    /'; status=1; }
  [[ -n "$fixed" ]] && { echo "expected to fail but passed ($name; update $expected):"; echo "$fixed" | sed 's/^/  /'; status=1; }
  if grep -q -- '--- SKIP' "$log"; then grep -A1 -- '--- SKIP' "$log" | sed 's/^/  /' | head -6; fi
  echo "${name}_tests: $tests"
  echo "${name}_failed: $failed"
  echo "${name}_unexpected: $(echo -n "$unexpected" | grep -c . || true)"
  echo "${name}_fixed: $(echo -n "$fixed" | grep -c . || true)"
done
exit $status
