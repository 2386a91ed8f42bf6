#!/usr/bin/env bash
# demo.sh - what berth can do today, for real: an OCI runtime-spec container runtime with runc's
# command line, run on a busybox root filesystem built here from Debian's busybox-static.
# Run through `make demo` (which installs what is needed and builds bin/berth-runtime first).
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
cd "$TOP"
RT="$TOP/bin/berth-runtime"
DEMO="$TOP/.cache/demo"
ROOT="$DEMO/state"
R=("$RT" --root "$ROOT")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

cleanup() {
  for id in $("${R[@]}" list -q 2>/dev/null); do "${R[@]}" delete --force "$id" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
cleanup

say "a bundle with a busybox root filesystem (hack/mkbundle, from /bin/busybox of busybox-static)"
rm -rf "$DEMO/bundle"
go run ./hack/mkbundle "$DEMO/bundle" sh
B="$DEMO/bundle"
config() { jq "$1" "$B/config.json" >"$B/config.json.new" && mv "$B/config.json.new" "$B/config.json"; }
config '.process.terminal = false'
echo "bundle: $B ($(du -sh "$B/rootfs" | cut -f1) rootfs)"

say "version and features (runtime-spec $("$RT" --version | sed -n 's/^spec: //p'))"
show "$RT" --version
"$RT" features | jq -c '{ociVersionMax, namespaces: .linux.namespaces, seccompActions: (.linux.seccomp.actions | length), capabilities: (.linux.capabilities | length)}'

say "run: a container in its own namespaces, looking at itself"
config '.process.args = ["sh", "-c", "echo hostname: $(hostname); echo pid: $$; id; echo mounts: $(wc -l < /proc/self/mounts); ls /; grep -c . /proc/self/cgroup | sed s/^/cgroups:\\ /; exit 3"]'
set +e
show "${R[@]}" run --bundle "$B" demo-run
echo "exit status: $? (the container's)"
set -e

say "create, start, exec, ps, pause, resume, kill, delete"
config '.process.args = ["sh", "-c", "trap \"echo got SIGTERM; exit 0\" TERM; while true; do sleep 1; done"]'
show "${R[@]}" create --bundle "$B" demo
"${R[@]}" state demo | jq -c '{id, status, pid}'
show "${R[@]}" start demo
"${R[@]}" state demo | jq -c '{id, status, pid}'
show "${R[@]}" exec --user 1000:1000 --env GREETING=hello demo sh -c 'echo $GREETING from $(id -un) in $(pwd)'
show "${R[@]}" ps --format json demo
show "${R[@]}" pause demo
"${R[@]}" state demo | jq -c '{id, status}'
show "${R[@]}" resume demo
show "${R[@]}" update --memory 67108864 --pids-limit 64 demo
show "${R[@]}" list
show "${R[@]}" kill demo TERM
for _ in $(seq 100); do [[ $("${R[@]}" state demo | jq -r .status) == stopped ]] && break; sleep 0.05; done
"${R[@]}" state demo | jq -c '{id, status}'
show "${R[@]}" delete demo

say "what runc and crun accept and berth refuses"
config '.process.args = ["true"] | .process.capabilities.bounding += ["CAP_TELEPORT"]'
show "${R[@]}" create --bundle "$B" demo-bad || true
config '.process.capabilities.bounding -= ["CAP_TELEPORT"]'
show "${R[@]}" create --bundle "$B" demo-created
show "${R[@]}" delete demo-created || true
show "${R[@]}" delete --force demo-created

say "bad input gets an error naming the field, and nothing is left behind"
config '.process.cwd = "relative/dir"'
show "${R[@]}" create --bundle "$B" demo-bad || true
config '.process.cwd = "/" | .mounts += [{"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["ro,nosuid"]}]'
show "${R[@]}" create --bundle "$B" demo-bad || true
show "${R[@]}" list -q

say "done: everything above ran for real; make test runs the tests, make conformance the OCI validation suite, make bench the comparison with runc and crun"
