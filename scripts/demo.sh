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

say "images: import the busybox root as an image, push it to berth's registry, pull it back, run it"
BERTH="$TOP/bin/berth"
export BERTH_ROOT="$DEMO/berth-root"
rm -rf "$BERTH_ROOT" "$DEMO/registry" "$DEMO/img"
mkdir -p "$DEMO/img"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BERTH" registry serve --addr "127.0.0.1:$port" --root "$DEMO/registry" 2>"$DEMO/registry.log" &
regpid=$!
trap 'kill $regpid 2>/dev/null || true; wait $regpid 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break; sleep 0.1; done
show "$BERTH" image import --cmd '["/bin/sh","-c","echo hello from $(cat /etc/hostname 2>/dev/null || hostname) as $(id -un), in $(pwd)"]' --workdir /tmp --label demo=yes "$B/rootfs" demo/busybox:1
show "$BERTH" image ls
show "$BERTH" image push "demo/busybox:1" "127.0.0.1:$port/demo/busybox:1"
curl -fsS "http://127.0.0.1:$port/v2/demo/busybox/tags/list"; echo
show "$BERTH" image rm demo/busybox:1
show "$BERTH" image gc --grace 1ns
show "$BERTH" image pull "127.0.0.1:$port/demo/busybox:1"
show "$BERTH" image bundle "127.0.0.1:$port/demo/busybox:1" "$DEMO/img/bundle"
jq -c '{args: .process.args, cwd: .process.cwd, annotations}' "$DEMO/img/bundle/config.json"
show "${R[@]}" run --bundle "$DEMO/img/bundle" demo-image
say "the same image as archives (skopeo's transports), unpacked without importing"
show "$BERTH" image export "127.0.0.1:$port/demo/busybox:1" "docker-archive:$DEMO/img/busybox.tar:busybox:demo"
show "$BERTH" image bundle "docker-archive:$DEMO/img/busybox.tar" "$DEMO/img/from-archive"
show "${R[@]}" run --bundle "$DEMO/img/from-archive" demo-archive

say "networking: berth's CNI plugins (bin/cni) attach two network namespaces to one bridge (cnitool, spec 1.1.0)"
CNITOOL="$(go tool -n cnitool)"
cnitool() { "$CNITOOL" "$@"; }
NET="$DEMO/cni"
rm -rf "$NET"; mkdir -p "$NET/conf" "$NET/www"
echo "hello through a host port" >"$NET/www/index.html"
cat >"$NET/conf/demo.conflist" <<EOF
{"cniVersion": "1.1.0", "name": "berth-demo", "plugins": [
  {"type": "bridge", "bridge": "berthdemo0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$NET/ipam", "ranges": [[{"subnet": "10.231.7.0/24"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
  {"type": "firewall"},
  {"type": "tuning", "sysctl": {"net.core.somaxconn": "512"}}]}
EOF
export CNI_PATH="$TOP/bin/cni" NETCONFPATH="$NET/conf"
httpd=""
netcleanup() {
  if [[ -n "$httpd" ]]; then kill "$httpd" 2>/dev/null || true; wait "$httpd" 2>/dev/null || true; httpd=""; fi
  for ns in berth-demo-a berth-demo-b; do
    if [[ -e /run/netns/$ns ]]; then "$CNITOOL" del berth-demo "/run/netns/$ns" >/dev/null 2>&1 || true; ip netns del "$ns" 2>/dev/null || true; fi
  done
  ip link del berthdemo0 2>/dev/null || true
}
trap 'netcleanup; kill $regpid 2>/dev/null || true; wait $regpid 2>/dev/null || true; cleanup' EXIT
netcleanup
ip netns add berth-demo-a
ip netns add berth-demo-b
printf '$ cnitool add berth-demo /run/netns/berth-demo-a\n'
"$CNITOOL" add berth-demo /run/netns/berth-demo-a | jq -c '{cniVersion, interfaces: [.interfaces[] | .name], ips: [.ips[] | .address]}'
printf '$ CAP_ARGS=<host port 18080 -> 80> cnitool add berth-demo /run/netns/berth-demo-b\n'
ipb=$(CAP_ARGS='{"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}' \
  "$CNITOOL" add berth-demo /run/netns/berth-demo-b | jq -r '.ips[0].address' | cut -d/ -f1)
echo "pod b: $ipb"
ip netns exec berth-demo-b /bin/busybox httpd -f -p 80 -h "$NET/www" &
httpd=$!
show ip netns exec berth-demo-a /bin/busybox ping -c 2 -W 2 "$ipb"
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:18080/" 2>/dev/null && break; sleep 0.1; done
show curl -fsS "http://127.0.0.1:18080/"
show cnitool check berth-demo /run/netns/berth-demo-b && echo "check: ok"
show cnitool del berth-demo /run/netns/berth-demo-b && echo "del: ok (host port, firewall rules and address released)"
if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:18080/" 2>/dev/null; then echo "host port 18080 still open after DEL"; else echo "host port 18080 is closed again"; fi
netcleanup

say "done: everything above ran for real; make test runs the tests, make conformance the OCI validation, distribution-spec and CNI scenario suites, make bench the comparisons with runc, crun, Distribution, umoci and the reference CNI plugins"
