#!/usr/bin/env bash
# distribution-spec.sh - run both forms of the OCI distribution-spec conformance suite against
# `bin/berth registry serve`, and compare the failures with the checked-in list of expected ones
# (distribution-spec.expected, each with its cause).
#
#   legacy:  the 2023 Ginkgo suite (a test package, pinned in tools/conformance-legacy/go.mod, built
#            with `go test -c`): the pull, push, content discovery (tags, referrers) and content
#            management workflows, 79 specs.
#   current: the rewritten suite (a main package, pinned as a tool in go.mod), run against the
#            default configuration (deletes by tag answer UNSUPPORTED, which it counts as skipped)
#            and, unless --quick, again against a registry with every optional API enabled.
#
# Usage: scripts/conformance/distribution-spec.sh [--quick]
# Exit status: 0 when the failures are exactly the expected ones; 1 when a test outside the list
# fails or a listed one passes. Prints `key: value` lines at the end.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(cd "$HERE/../.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
BERTH="${BERTH:-$TOP/bin/berth}"
EXPECTED="$HERE/distribution-spec.expected"
WORK="${CONFORMANCE_DIR:-$TOP/.cache/conformance/distribution-spec}"
MOD=github.com/opencontainers/distribution-spec/conformance

[[ -x "$BERTH" ]] || { echo "distribution-spec: $BERTH not built (make)" >&2; exit 1; }
quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
done

# ---- build both suites from the module cache, at the versions the go.mod files pin
mkdir -p "$WORK"
cur_ver="$(cd "$TOP" && go list -m -f '{{.Version}}' "$MOD")"
leg_ver="$(cd "$TOP/tools/conformance-legacy" && go list -m -f '{{.Version}}' "$MOD")"
if [[ ! -x "$WORK/current-$cur_ver" ]]; then
  echo "distribution-spec: building the current suite $cur_ver" >&2
  (cd "$TOP" && go build -o "$WORK/current-$cur_ver" "$MOD")
fi
if [[ ! -x "$WORK/legacy-$leg_ver.test" ]]; then
  echo "distribution-spec: building the legacy suite $leg_ver" >&2
  (cd "$TOP/tools/conformance-legacy" && go test -c -o "$WORK/legacy-$leg_ver.test" "$MOD")
fi

RUN="$(mktemp -d "$WORK/run.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT

# start_registry NAME [CONFIG]: a registry on a free loopback port; sets ADDR
start_registry() {
  local name="$1" cfg="${2:-}" log="$RUN/$1.log"
  local args=(registry serve --addr 127.0.0.1:0 --root "$RUN/$name-root")
  [[ -n "$cfg" ]] && args+=(--config "$cfg")
  "$BERTH" "${args[@]}" 2>"$log" &
  pids+=($!)
  ADDR=""
  for _ in $(seq 100); do
    ADDR="$(sed -n 's/.*"msg":"registry listening","addr":"\([^"]*\)".*/\1/p' "$log" | head -1)"
    [[ -n "$ADDR" ]] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log" >&2; echo "distribution-spec: registry did not start" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n "$ADDR" ]] || { cat "$log" >&2; echo "distribution-spec: registry did not report its address" >&2; exit 1; }
}

# count PATTERN FILE: occurrences of PATTERN (0 is not an error)
count() { { grep -o "$1" "$2" || true; } | wc -l; }

LOG="$WORK/logs"
rm -rf "$LOG"
mkdir -p "$LOG"
: >"$LOG/failing.txt"
summary=()

# run_legacy LABEL: the four workflows; mount without `from` is on by default (automatic content discovery)
run_legacy() {
  local d="$LOG/$1"
  mkdir -p "$d"
  (cd "$d" && env OCI_ROOT_URL="http://$ADDR" OCI_NAMESPACE=conformance/legacy1 OCI_CROSSMOUNT_NAMESPACE=conformance/legacy2 \
    OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1 \
    OCI_HIDE_SKIPPED_WORKFLOWS=0 OCI_DEBUG=0 OCI_AUTOMATIC_CROSSMOUNT=1 OCI_REPORT_DIR="$d" \
    "$WORK/legacy-$leg_ver.test" -test.timeout 10m >"$d/output.txt" 2>&1) || true
  [[ -f "$d/junit.xml" ]] || { tail -20 "$d/output.txt" >&2; echo "legacy $1 #- the suite did not run" >>"$LOG/failing.txt"; return; }
  local t p f s
  # the specs are the "[It]" test cases (the report also lists suite set-up nodes)
  p=$(count '<testcase name="\[It\][^>]*status="passed"' "$d/junit.xml")
  f=$(count '<testcase name="\[It\][^>]*status="failed"' "$d/junit.xml")
  s=$(count '<testcase name="\[It\][^>]*status="skipped"' "$d/junit.xml")
  t=$((p + f + s))
  grep -o '<testcase name="[^"]*" [^>]*status="failed"' "$d/junit.xml" |
    sed -e 's/^<testcase name="\[It\] OCI Distribution Conformance Tests /legacy /' -e 's/" .*//' >>"$LOG/failing.txt" || true
  # a spec that did not run because the suite aborted is neither passed nor failed: count it
  if ((t < 75)); then echo "legacy $1 #- only $t specs ran" >>"$LOG/failing.txt"; fi
  summary+=("$1_tests: $t" "$1_passed: $p" "$1_failed: $f" "$1_skipped: $s")
}

# run_current LABEL [ENV...]: the rewritten suite's API and data tests
run_current() {
  local label="$1" d="$LOG/$1"
  shift
  mkdir -p "$d"
  (cd "$d" && env OCI_REGISTRY="$ADDR" OCI_TLS=disabled OCI_REPO1=conformance/repo1 OCI_REPO2=conformance/repo2 \
    OCI_RESULTS_DIR="$d" OCI_LOG=error "$@" "$WORK/current-$cur_ver" >"$d/output.txt" 2>"$d/stderr.txt") || true
  [[ -f "$d/junit.xml" ]] || { tail -20 "$d/stderr.txt" >&2; echo "current $label #- the suite did not run" >>"$LOG/failing.txt"; return; }
  local t p f s
  t=$(count '<testcase ' "$d/junit.xml")
  p=$(count '<testcase [^>]*status="passed"' "$d/junit.xml")
  f=$(count '<testcase [^>]*status="\(failure\|error\)"' "$d/junit.xml")
  s=$(count '<testcase [^>]*status="skipped"' "$d/junit.xml")
  grep -o '<testcase name="[^"]*" [^>]*status="\(failure\|error\)"' "$d/junit.xml" |
    sed -e 's/^<testcase name="OCI Conformance Test\//current /' -e 's/" .*//' >>"$LOG/failing.txt" || true
  summary+=("${label}_tests: $t" "${label}_passed: $p" "${label}_failed: $f" "${label}_skipped: $s")
}

start_registry default
run_legacy legacy
run_current current
if ((!quick)); then
  # every optional API on: deletes by tag, upload cancel, tags as parameters of a push by digest
  printf 'delete:\n  tags: true\nlog:\n  accessLog: false\n' >"$RUN/all.yaml"
  start_registry all "$RUN/all.yaml"
  run_current current_all_apis OCI_API_BLOBS_UPLOAD_CANCEL=true OCI_API_MANIFESTS_TAG_PARAM=true
fi

# ---- compare with the expected failures
sort -u "$LOG/failing.txt" >"$LOG/failing.keys"
{ grep -v '^#' "$EXPECTED" | grep -v '^$' || true; } | sort -u >"$LOG/expected.keys"
unexpected=$(comm -23 "$LOG/failing.keys" "$LOG/expected.keys")
fixed=$(comm -13 "$LOG/failing.keys" "$LOG/expected.keys")
echo "suite_current: $MOD $cur_ver"
echo "suite_legacy: $MOD $leg_ver"
printf '%s\n' "${summary[@]}"
echo "unexpected: $(printf '%s' "$unexpected" | grep -c . || true)"
echo "fixed: $(printf '%s' "$fixed" | grep -c . || true)"
status=0
if [[ -n "$unexpected" ]]; then
  status=1
  while read -r k; do echo "unexpected failure: $k"; done <<<"$unexpected"
fi
if [[ -n "$fixed" ]]; then
  status=1
  while read -r k; do echo "listed as failing but passed (remove it from $EXPECTED): $k"; done <<<"$fixed"
fi
echo "logs: $LOG"
exit $status
