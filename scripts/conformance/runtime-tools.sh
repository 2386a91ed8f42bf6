#!/usr/bin/env bash
# runtime-tools.sh - run the OCI runtime validation suite (opencontainers/runtime-tools validation/,
# pinned in go.mod as tools) against bin/berth-runtime, and compare the failures with the checked-in
# list of expected ones (runtime-tools.expected, each with its cause).
#
# Usage: scripts/conformance/runtime-tools.sh [--quick] [PROGRAM...]
#   --quick   only the programs in QUICK below (for make test)
# Exit status: 0 when the failures are exactly the expected ones among the programs run; 1 when a
# test point outside the list fails or a listed one passes (update the list, with a reason).
# Prints `key: value` lines at the end: programs, tests, passed, failed, skipped, unexpected, fixed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(cd "$HERE/../.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
RUNTIME="${RUNTIME:-$TOP/bin/berth-runtime}"
EXPECTED="$HERE/runtime-tools.expected"
WORK="${CONFORMANCE_DIR:-$TOP/.cache/conformance/runtime-tools}"
TIMEOUT="${CONF_TIMEOUT:-240}"
QUICK=(create delete default hooks_stdin kill linux_ns_path linux_uid_mappings misc_props mounts process
  process_capabilities_fail process_user root_readonly_true start state linux_masked_paths linux_seccomp)

[[ $(id -u) == 0 ]] || { echo "runtime-tools: needs root" >&2; exit 1; }
[[ -x "$RUNTIME" ]] || { echo "runtime-tools: $RUNTIME not built (make)" >&2; exit 1; }

quick=0
names=()
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    *) names+=("$a") ;;
  esac
done

# ---- build the suite from the module cache, at the version go.mod pins
mkdir -p "$WORK/validation"
mod="$(cd "$TOP" && go list -m -f '{{.Dir}}' github.com/opencontainers/runtime-tools)"
ver="$(cd "$TOP" && go list -m -f '{{.Version}}' github.com/opencontainers/runtime-tools)"
if [[ ! -f "$WORK/.built-$ver" ]]; then
  echo "runtime-tools: building $ver" >&2
  (cd "$TOP" && CGO_ENABLED=0 go build -tags "netgo osusergo" -o "$WORK/runtimetest" github.com/opencontainers/runtime-tools/cmd/runtimetest)
  pkgs=$(cd "$TOP" && go list tool | grep '^github.com/opencontainers/runtime-tools/validation/')
  for p in $pkgs; do
    (cd "$TOP" && go build -o "$WORK/validation/$(basename "$p").t" "$p")
  done
  cp "$mod/rootfs-$(go env GOARCH).tar.gz" "$WORK/"
  chmod u+w "$WORK"/*.tar.gz
  touch "$WORK/.built-$ver"
fi

if ((${#names[@]} == 0)); then
  if ((quick)); then names=("${QUICK[@]}"); else
    mapfile -t names < <(cd "$WORK/validation" && ls *.t | sed 's/\.t$//' | sort)
  fi
fi

# ---- a wrapper that gives the runtime a private state root, as containerd's shim would
STATE="$WORK/state"
mkdir -p "$STATE"
WRAP="$WORK/berth-runtime-wrapped"
cat >"$WRAP" <<WRAPEOF
#!/bin/sh
exec "$RUNTIME" --root "$STATE" "\$@"
WRAPEOF
chmod 755 "$WRAP"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

LOG="$WORK/logs"
rm -rf "$LOG"
mkdir -p "$LOG"
: >"$LOG/failing.txt"
tot=0 pass=0 fail=0 skip=0
for n in "${names[@]}"; do
  prog="$WORK/validation/$n.t"
  [[ -x "$prog" ]] || { echo "runtime-tools: no program $n" >&2; exit 1; }
  set +e
  (cd "$WORK" && RUNTIME="$WRAP" timeout -k 10 "$TIMEOUT" "$prog" </dev/null >"$LOG/$n.tap" 2>"$LOG/$n.err")
  rc=$?
  set -e
  # containers a program did not delete, and cgroups it made
  for id in $("$RUNTIME" --root "$STATE" list -q 2>/dev/null); do
    "$RUNTIME" --root "$STATE" delete --force "$id" >/dev/null 2>&1 || true
  done
  for c in /sys/fs/cgroup/*/cgrouptest /sys/fs/cgroup/*/testdir/cgrouptest/container /sys/fs/cgroup/*/testdir/cgrouptest /sys/fs/cgroup/*/testdir; do
    [[ -d "$c" ]] && rmdir "$c" 2>/dev/null || true
  done
  read -r t p f s < <(awk '
    /^(not )?ok([ \t]|$)/ { t++; if ($0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/) s++; else if ($1 == "not") f++; else p++ }
    END { printf "%d %d %d %d\n", t, p, f, s }' "$LOG/$n.tap")
  awk -v n="$n" '/^not ok/ && !/#[ \t]*[Ss][Kk][Ii][Pp]/ { sub(/^not ok[ \t]*/, ""); num=$1; sub(/^[0-9]+[ \t]*-?[ \t]*/, ""); print n " #" num " " $0 }' \
    "$LOG/$n.tap" >>"$LOG/failing.txt"
  if ((rc == 0 && t == 0)); then
    # Programs that only print a YAML "error" diagnostic under an empty plan: one test.
    t=1
    if grep -q '^ *"error":' "$LOG/$n.tap"; then
      f=1
      echo "$n #- $(grep -m1 '^ *"error":' "$LOG/$n.tap" | sed 's/^ *"error": *"//; s/\\n.*//; s/",\?$//' | cut -c1-200)" >>"$LOG/failing.txt"
    else
      p=1
    fi
  fi
  if ((rc != 0 && f == 0)); then
    t=$((t + 1)); f=1
    echo "$n #- program failed (exit $rc): $(head -c 300 "$LOG/$n.err" | tr '\n' ' ')" >>"$LOG/failing.txt"
  fi
  tot=$((tot + t)); pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  printf '%-36s tests=%-4s pass=%-4s fail=%-3s skip=%s\n' "$n" "$t" "$p" "$f" "$s" >&2
done

# ---- compare with the expected failures (key: "program #n")
key() { sed -nE 's/^([a-z0-9_]+ #[^ ]+).*/\1/p' "$1" | sort -u; }
key "$LOG/failing.txt" >"$LOG/failing.keys"
grep -v '^#' "$EXPECTED" | grep -v '^$' >"$LOG/expected.all" || true
ran=" ${names[*]} "
: >"$LOG/expected.keys"
: >"$LOG/flaky.keys"
while read -r line; do
  list="$LOG/expected.keys"
  if [[ "$line" == "? "* ]]; then
    list="$LOG/flaky.keys"
    line="${line#? }"
  fi
  read -r prog num _ <<<"$line"
  [[ "$ran" == *" $prog "* ]] && echo "$prog $num" >>"$list"
done <"$LOG/expected.all"
sort -u -o "$LOG/expected.keys" "$LOG/expected.keys"
sort -u -o "$LOG/flaky.keys" "$LOG/flaky.keys"
unexpected=$(comm -23 "$LOG/failing.keys" "$LOG/expected.keys" | comm -23 - "$LOG/flaky.keys")
fixed=$(comm -13 "$LOG/failing.keys" "$LOG/expected.keys")
echo "suite: opencontainers/runtime-tools $ver"
echo "programs: ${#names[@]}"
echo "tests: $tot"
echo "passed: $pass"
echo "failed: $fail"
echo "skipped: $skip"
echo "unexpected: $(printf '%s' "$unexpected" | grep -c . || true)"
echo "fixed: $(printf '%s' "$fixed" | grep -c . || true)"
status=0
if [[ -n "$unexpected" ]]; then
  status=1
  while read -r k; do echo "unexpected failure: $(grep -F "$k " "$LOG/failing.txt" | head -1 | cut -c1-300)"; done <<<"$unexpected"
fi
if [[ -n "$fixed" ]]; then
  status=1
  while read -r k; do echo "listed as failing but passed (remove it from $EXPECTED): $k"; done <<<"$fixed"
fi
echo "logs: $LOG"
exit $status
