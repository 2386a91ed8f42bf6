package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/sysctl"
)

func versions(t *testing.T) []string {
	if testing.Short() {
		return []string{"1.1.0"}
	}
	if v := os.Getenv("BERTH_CNI_SPEC_VERSIONS"); v != "" {
		return strings.Fields(v)
	}
	return []string{"0.4.0", "1.0.0", "1.1.0"}
}

func atLeast110(v string) bool { return v == "1.1.0" }

func TestScenarios(t *testing.T) {
	dir := pluginDir(t)
	for _, v := range versions(t) {
		t.Run(v, func(t *testing.T) {
			t.Run("version", func(t *testing.T) { testVersion(t, newEnv(t, dir, v)) })
			t.Run("pods", func(t *testing.T) { testPods(t, newEnv(t, dir, v)) })
			t.Run("dualstack", func(t *testing.T) { testDualStack(t, newEnv(t, dir, v)) })
			t.Run("cnitool", func(t *testing.T) { testCnitool(t, newEnv(t, dir, v)) })
			t.Run("bandwidth", func(t *testing.T) { testBandwidth(t, newEnv(t, dir, v)) })
			t.Run("errors", func(t *testing.T) { testErrors(t, newEnv(t, dir, v)) })
			t.Run("same_bridge", func(t *testing.T) { testSameBridge(t, newEnv(t, dir, v)) })
			if atLeast110(v) {
				t.Run("gc", func(t *testing.T) { testGC(t, newEnv(t, dir, v)) })
				t.Run("status", func(t *testing.T) { testStatus(t, newEnv(t, dir, v)) })
			}
		})
	}
}

func testVersion(t *testing.T, e *env) {
	for _, name := range []string{"bridge", "host-local", "loopback", "portmap", "firewall", "tuning", "bandwidth"} {
		out, err := plugin(t, e.dir, name, []byte(`{"cniVersion":"`+e.version+`"}`), "CNI_COMMAND=VERSION")
		if err != nil {
			t.Errorf("VERSION %s: %v %s", name, err, out)
			continue
		}
		var vi struct {
			Supported []string `json:"supportedVersions"`
		}
		json.Unmarshal(out, &vi)
		if !contains(vi.Supported, e.version) {
			t.Errorf("VERSION %s: %s not among %v", name, e.version, vi.Supported)
		}
		info, err := e.cni.GetVersionInfo(context.Background(), name)
		if err != nil || !contains(info.SupportedVersions(), e.version) {
			t.Errorf("libcni GetVersionInfo %s: %v %v", name, info, err)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// testPods: two pods on one bridge with portmap, firewall and tuning chained.
func testPods(t *testing.T, e *env) {
	l := e.conflist(listOpts{name: "pods", portmap: true, firewall: true, tuning: true})
	c1, c2 := e.pod("c1"), e.pod("c2")
	base := 20000 + int(e.id[0])%100*100
	pLocal, pAll, pUDP := base+1, base+2, base+3
	caps := map[string]interface{}{"portMappings": []map[string]interface{}{
		{"hostPort": pLocal, "containerPort": 8080, "protocol": "tcp", "hostIP": "127.0.0.1"},
		{"hostPort": pAll, "containerPort": 8080, "protocol": "tcp"},
		{"hostPort": pUDP, "containerPort": 5353, "protocol": "udp"},
	}}
	rt1, rt2 := e.rt(c1, "eth0", caps), e.rt(c2, "eth0", nil)
	r1 := e.mustAdd(l, rt1)
	r2 := e.mustAdd(l, rt2)
	ip1, ip2 := addrOf(r1, false), addrOf(r2, false)
	gw := e.shift(0) + ".1"
	if ip1 == nil || ip2 == nil || ip1.Equal(ip2) {
		t.Fatalf("ADD gave %v and %v, want two distinct IPv4 addresses", ip1, ip2)
	}
	if !strings.HasPrefix(ip1.String(), e.shift(0)+".") {
		t.Errorf("c1 got %s outside %s.0/24", ip1, e.shift(0))
	}
	ipamDir := filepath.Join(e.work, "ipam", l.Name)
	if _, err := os.Stat(filepath.Join(ipamDir, ip2.String())); err != nil {
		t.Errorf("no IPAM record for c2: %v", err)
	}

	token := "pod-c1-" + e.id
	serve(t, c1, "tcp", ":8080", token)
	serve(t, c2, "tcp", ":8080", "pod-c2")
	serve(t, nil, "tcp", gw+":9", "gateway")
	t.Run("pod_to_pod", func(t *testing.T) {
		if got, err := fetch(t, c2, net.JoinHostPort(ip1.String(), "8080")); got != token {
			t.Errorf("c2 -> c1: %q %v", got, err)
		}
		if got, err := fetch(t, c1, net.JoinHostPort(ip2.String(), "8080")); got != "pod-c2" {
			t.Errorf("c1 -> c2: %q %v", got, err)
		}
	})
	t.Run("pod_to_gateway", func(t *testing.T) {
		if got, err := fetch(t, c1, gw+":9"); got != "gateway" {
			t.Errorf("c1 -> gateway %s: %q %v", gw, got, err)
		}
	})
	t.Run("tuning_sysctl", func(t *testing.T) {
		var v string
		c1.do(t, func() (err error) { v, err = sysctl.Get("net/core/somaxconn"); return })
		if v != "555" {
			t.Errorf("net.core.somaxconn in c1 = %q, want 555", v)
		}
	})
	t.Run("hostport_localhost", func(t *testing.T) {
		if got, err := fetch(t, nil, fmt.Sprintf("127.0.0.1:%d", pLocal)); got != token {
			t.Errorf("127.0.0.1:%d -> c1: %q %v", pLocal, got, err)
		}
	})
	t.Run("hostport_hairpin", func(t *testing.T) {
		if got, err := fetch(t, c2, fmt.Sprintf("%s:%d", gw, pAll)); got != token {
			t.Errorf("c2 -> %s:%d -> c1: %q %v", gw, pAll, got, err)
		}
	})
	t.Run("hostport_udp", func(t *testing.T) {
		echoUDP(t, c1, ":5353")
		if got, err := askUDP(t, fmt.Sprintf("%s:%d", gw, pUDP)); got != "udp-pong" {
			t.Errorf("host -> %s:%d/udp -> c1: %q %v", gw, pUDP, got, err)
		}
	})
	t.Run("check", func(t *testing.T) {
		if err := e.check(l, rt1); err != nil {
			t.Errorf("CHECK after ADD: %v", err)
		}
	})
	t.Run("duplicate_add", func(t *testing.T) {
		if _, err := e.add(l, rt1); err == nil {
			t.Errorf("a second ADD of the same attachment succeeded")
		}
		if got, err := fetch(t, nil, net.JoinHostPort(ip1.String(), "8080")); got != token {
			t.Errorf("c1 unreachable after a refused duplicate ADD: %q %v", got, err)
		}
		if _, err := os.Stat(filepath.Join(ipamDir, ip1.String())); err != nil {
			t.Errorf("the refused duplicate ADD released c1's address: %v", err)
		}
	})
	t.Run("check_after_veth_deleted", func(t *testing.T) {
		c2.do(t, func() error {
			l, err := netlink.LinkByName("eth0")
			if err == nil {
				err = netlink.LinkDel(l)
			}
			return err
		})
		if err := e.check(l, rt2); err == nil {
			t.Errorf("CHECK passed after eth0 was deleted")
		}
	})
	t.Run("del_twice", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			if err := e.del(l, rt2); err != nil {
				t.Errorf("DEL %d: %v", i+1, err)
			}
		}
		if _, err := os.Stat(filepath.Join(ipamDir, ip2.String())); !os.IsNotExist(err) {
			t.Errorf("c2's address still allocated after DEL: %v", err)
		}
	})
	t.Run("del_without_add", func(t *testing.T) {
		c3 := e.pod("c3")
		if err := e.del(l, e.rt(c3, "eth0", nil)); err != nil {
			t.Errorf("DEL without ADD: %v", err)
		}
	})
	t.Run("del_netns_gone", func(t *testing.T) {
		c4 := e.pod("c4")
		rt4 := e.rt(c4, "eth0", nil)
		r4, err := e.add(l, rt4)
		if err != nil {
			t.Fatal(err)
		}
		if err := exec.Command("ip", "netns", "del", c4.name).Run(); err != nil {
			t.Fatal(err)
		}
		if err := e.del(l, rt4); err != nil {
			t.Errorf("DEL after the netns is gone: %v", err)
		}
		if _, err := os.Stat(filepath.Join(ipamDir, addrOf(r4, false).String())); !os.IsNotExist(err) {
			t.Errorf("address still allocated: %v", err)
		}
	})
	t.Run("del_without_cache_or_capabilities", func(t *testing.T) {
		// The runtime lost its cached ADD result and does not repeat the port mappings: DEL
		// must still remove the mappings and the firewall rules (the reference plugins' lesson).
		c5 := e.pod("c5")
		p5 := base + 5
		rt5 := e.rt(c5, "eth0", map[string]interface{}{"portMappings": []map[string]interface{}{{"hostPort": p5, "containerPort": 8080, "protocol": "tcp"}}})
		r5, err := e.add(l, rt5)
		if err != nil {
			t.Fatal(err)
		}
		ip5 := addrOf(r5, false).String()
		cached, _ := filepath.Glob(filepath.Join(e.cache, "results", "*"+c5.id+"*"))
		saved := map[string][]byte{}
		for _, f := range cached {
			saved[f], _ = os.ReadFile(f)
			os.Remove(f)
		}
		t.Cleanup(func() {
			// let plugins that need the cached result clean up after the test
			for f, b := range saved {
				os.WriteFile(f, b, 0o600)
			}
			e.del(l, rt5)
		})
		if err := e.del(l, e.rt(c5, "eth0", nil)); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		if n := rulesMentioning(t, ip5); n != 0 {
			t.Errorf("%d rule lines still mention %s", n, ip5)
		}
		if n := rulesMentioning(t, fmt.Sprint(p5)); n != 0 {
			t.Errorf("%d rule lines still mention host port %d", n, p5)
		}
		if _, err := os.Stat(filepath.Join(ipamDir, ip5)); !os.IsNotExist(err) {
			t.Errorf("%s still allocated", ip5)
		}
	})
	t.Run("del_cleans_rules", func(t *testing.T) {
		if err := e.del(l, rt1); err != nil {
			t.Fatal(err)
		}
		if n := rulesMentioning(t, ip1.String()); n != 0 {
			t.Errorf("%d firewall/NAT lines still mention %s after DEL", n, ip1)
		}
		if got, err := fetch(t, nil, fmt.Sprintf("127.0.0.1:%d", pLocal)); err == nil {
			t.Errorf("host port still forwarded after DEL: %q", got)
		}
		if left := ipamFiles(t, ipamDir); len(left) != 0 {
			t.Errorf("addresses left after every DEL: %v", left)
		}
		// The pair may be deleted after DEL returns (berth leaves it to a detached helper once
		// it is detached; a deleted namespace takes its veth with it in a kernel work queue,
		// which on a loaded machine has taken more than ten seconds), but it must go: wait for
		// c1 to hold only lo and the bridge to have no port.
		var left []string
		for i := 0; i < 600; i++ {
			left = nil
			c1.do(t, func() error {
				ls, err := netlink.LinkList()
				for _, l := range ls {
					if l.Attrs().Name != "lo" {
						left = append(left, "c1:"+l.Attrs().Name)
					}
				}
				return err
			})
			if br, err := netlink.LinkByName(e.bridge); err == nil {
				all, _ := netlink.LinkList()
				for _, l := range all {
					if l.Attrs().MasterIndex == br.Attrs().Index {
						left = append(left, "port:"+l.Attrs().Name)
					}
				}
			}
			if len(left) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(left) != 0 {
			t.Errorf("still there long after every DEL: %v", left)
		}
	})
}

// rulesMentioning counts lines of the nftables and iptables rule sets that mention s.
func rulesMentioning(t *testing.T, s string) int {
	n := 0
	for _, cmd := range [][]string{{"nft", "list", "ruleset"}, {"iptables-save"}, {"ip6tables-save"}} {
		out, err := exec.Command(cmd[0], cmd[1:]...).Output()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' || r == '/' || r == '{' || r == '}' }) {
				if f == s {
					n++
				}
			}
		}
	}
	return n
}

func testDualStack(t *testing.T, e *env) {
	l := e.conflist(listOpts{name: "dual", dual: true, portmap: true, subnet: 1})
	c1, c2 := e.pod("d1"), e.pod("d2")
	hp := 22000 + int(e.id[2])%100*10
	r1 := e.mustAdd(l, e.rt(c1, "eth0", map[string]interface{}{"portMappings": []map[string]interface{}{{"hostPort": hp, "containerPort": 8080, "protocol": "tcp"}}}))
	r2 := e.mustAdd(l, e.rt(c2, "eth0", nil))
	for _, v6 := range []bool{false, true} {
		a1, a2 := addrOf(r1, v6), addrOf(r2, v6)
		if a1 == nil || a2 == nil {
			t.Fatalf("v6=%v: addresses %v %v", v6, a1, a2)
		}
		serve(t, c1, "tcp", net.JoinHostPort(a1.String(), "8080"), "dual")
		if got, err := fetch(t, c2, net.JoinHostPort(a1.String(), "8080")); got != "dual" {
			t.Errorf("v6=%v: d2 -> d1 %s: %q %v", v6, a1, got, err)
		}
		if got, err := fetch(t, nil, net.JoinHostPort(a1.String(), "8080")); got != "dual" {
			t.Errorf("v6=%v: host -> d1 %s: %q %v", v6, a1, got, err)
		}
		// a host port on every host address, reached at the bridge's gateway address
		gw := r1.IPs[0].Gateway
		if v6 {
			gw = r1.IPs[1].Gateway
		}
		if got, err := fetch(t, nil, net.JoinHostPort(gw.String(), fmt.Sprint(hp))); got != "dual" {
			t.Errorf("v6=%v: host -> %s port %d -> d1: %q %v", v6, gw, hp, got, err)
		}
	}
}

// testCnitool drives ADD, CHECK, DEL (and GC) through the cnitool command.
func testCnitool(t *testing.T, e *env) {
	tool := os.Getenv("BERTH_CNITOOL")
	if tool == "" {
		out, err := exec.Command("go", "tool", "-n", "cnitool").Output()
		if err != nil {
			t.Skipf("cnitool not available (go tool -n cnitool: %v); set BERTH_CNITOOL", err)
		}
		tool = strings.TrimSpace(string(out))
	}
	l := e.conflist(listOpts{name: "tool", firewall: true, subnet: 2})
	confDir := filepath.Join(e.work, "netconf")
	os.MkdirAll(confDir, 0o755)
	if err := os.WriteFile(filepath.Join(confDir, "tool.conflist"), l.Bytes, 0o644); err != nil {
		t.Fatal(err)
	}
	p := e.pod("t1")
	run := func(args ...string) ([]byte, error) {
		c := exec.Command(tool, args...)
		c.Env = append(os.Environ(), "NETCONFPATH="+confDir, "CNI_PATH="+e.dir)
		return c.CombinedOutput()
	}
	t.Cleanup(func() { run("del", l.Name, p.path) })
	out, err := run("add", l.Name, p.path)
	if err != nil {
		t.Fatalf("cnitool add: %v\n%s", err, out)
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) == 0 {
		t.Fatalf("cnitool add printed %q (%v)", out, err)
	}
	ip, _, _ := net.ParseCIDR(res.IPs[0].Address)
	ipamDir := filepath.Join(e.work, "ipam", l.Name)
	if out, err := run("check", l.Name, p.path); err != nil {
		t.Errorf("cnitool check: %v\n%s", err, out)
	}
	if out, err := run("del", l.Name, p.path); err != nil {
		t.Errorf("cnitool del: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(ipamDir, ip.String())); !os.IsNotExist(err) {
		t.Errorf("%s still allocated after cnitool del", ip)
	}
	if atLeast110(e.version) {
		if out, err := run("add", l.Name, p.path); err != nil {
			t.Fatalf("cnitool add: %v\n%s", err, out)
		}
		// cnitool's GC passes no valid attachments: everything of the network is stale
		if out, err := run("gc", l.Name, p.path); err != nil {
			t.Errorf("cnitool gc: %v\n%s", err, out)
		}
		if left := ipamFiles(t, ipamDir); len(left) != 0 {
			t.Errorf("cnitool gc left %v allocated", left)
		}
		if out, err := run("status", l.Name, p.path); err != nil {
			t.Errorf("cnitool status: %v\n%s", err, out)
		}
	}
}

// testBandwidth sends from a pod with an egress limit and looks at the shaper's counters: a tbf
// that delayed packets counts "overlimits". No timing is asserted.
func testBandwidth(t *testing.T, e *env) {
	bw := `{"type":"bandwidth","egressRate":8000000,"egressBurst":200000,"ingressRate":8000000,"ingressBurst":200000}`
	l := e.conflist(listOpts{name: "bw", bandwidth: bw, subnet: 3})
	p := e.pod("b1")
	r := e.mustAdd(l, e.rt(p, "eth0", nil))
	gw := e.shift(3) + ".1"
	// host sink on the gateway address: reads everything the pod sends
	ln, err := net.Listen("tcp", gw+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				got <- n
				return
			}
		}
	}()
	const size = 1 << 20
	start := time.Now()
	err = p.do(t, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		_, err = c.Write(make([]byte, size))
		return err
	})
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	n := <-got
	elapsed := time.Since(start)
	if n != size {
		t.Fatalf("received %d bytes, sent %d", n, size)
	}
	t.Logf("%d bytes in %s (%.1f Mbit/s, limit 8 Mbit/s)", n, elapsed, float64(n*8)/elapsed.Seconds()/1e6)
	var over uint32
	for _, i := range r.Interfaces {
		if i.Sandbox != "" {
			continue
		}
		link, err := netlink.LinkByName(i.Name)
		if err != nil {
			continue
		}
		qs, _ := netlink.QdiscList(link)
		for _, q := range qs {
			if q.Type() == "tbf" && q.Attrs().Statistics != nil {
				over += q.Attrs().Statistics.Queue.Overlimits
			}
		}
	}
	if over == 0 {
		t.Errorf("no tbf on the pod's host interfaces %v throttled the transfer", r.Interfaces)
	}
}

func testErrors(t *testing.T, e *env) {
	p := e.pod("e1")
	l := e.conflist(listOpts{name: "err", subnet: 4})
	good := pluginConf(t, l, 0)
	env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + p.id, "CNI_NETNS=" + p.path, "CNI_IFNAME=eth0"}
	t.Run("malformed_json", func(t *testing.T) {
		out, err := plugin(t, e.dir, "bridge", []byte(`{"cniVersion":"`+e.version+`","name":`), env...)
		specError(t, out, err, types.ErrDecodingFailure)
	})
	t.Run("unknown_version", func(t *testing.T) {
		out, err := plugin(t, e.dir, "bridge", setField(t, good, "cniVersion", "9.9.9"), env...)
		specError(t, out, err, types.ErrIncompatibleCNIVersion)
	})
	t.Run("missing_containerid", func(t *testing.T) {
		out, err := plugin(t, e.dir, "bridge", good, "CNI_COMMAND=ADD", "CNI_NETNS="+p.path, "CNI_IFNAME=eth0")
		specError(t, out, err, types.ErrInvalidEnvironmentVariables)
	})
	t.Run("netns_missing", func(t *testing.T) {
		out, err := plugin(t, e.dir, "bridge", good, "CNI_COMMAND=ADD", "CNI_CONTAINERID="+p.id+"x", "CNI_NETNS=/run/netns/bs"+e.id+"-nonexistent", "CNI_IFNAME=eth0")
		specError(t, out, err, types.ErrUnknownContainer)
	})
	t.Run("duplicate_add", func(t *testing.T) {
		out, err := plugin(t, e.dir, "bridge", good, env...)
		if err != nil {
			t.Fatalf("first ADD: %v %s", err, out)
		}
		t.Cleanup(func() { plugin(t, e.dir, "bridge", good, append([]string{"CNI_COMMAND=DEL"}, env[1:]...)...) })
		out, err = plugin(t, e.dir, "bridge", good, env...)
		specError(t, out, err, 2, 3, 4, 5, 6, 7, 11, 100, 101, 999)
	})
	if left := ipamFiles(t, filepath.Join(e.work, "ipam", l.Name)); len(left) > 1 {
		t.Errorf("failed ADDs leaked addresses: %v", left)
	}
}

// pluginConf is plugin i of the list as a runtime would send it (name and cniVersion added).
func pluginConf(t *testing.T, l *libcni.NetworkConfigList, i int) []byte {
	var m map[string]interface{}
	if err := json.Unmarshal(l.Plugins[i].Bytes, &m); err != nil {
		t.Fatal(err)
	}
	m["name"], m["cniVersion"] = l.Name, l.CNIVersion
	b, _ := json.Marshal(m)
	return b
}

func setField(t *testing.T, conf []byte, k string, v interface{}) []byte {
	var m map[string]interface{}
	json.Unmarshal(conf, &m)
	m[k] = v
	b, _ := json.Marshal(m)
	return b
}

// testGC: the runtime forgets a pod (netns and cache gone); GC with the live pods frees its
// address and rules and keeps the live one's.
func testGC(t *testing.T, e *env) {
	l := e.conflist(listOpts{name: "gc", portmap: true, firewall: true, tuning: true, subnet: 5,
		bandwidth: `{"type":"bandwidth","egressRate":100000000,"egressBurst":1000000}`})
	live, stale := e.pod("g1"), e.pod("g2")
	base := 21000 + int(e.id[1])%100*100
	rl := e.mustAdd(l, e.rt(live, "eth0", nil))
	rtStale := e.rt(stale, "eth0", map[string]interface{}{"portMappings": []map[string]interface{}{{"hostPort": base + 7, "containerPort": 80, "protocol": "tcp"}}})
	rs, err := e.add(l, rtStale)
	if err != nil {
		t.Fatal(err)
	}
	// After GC, a DEL still cleans up whatever GC left (the reference plugins leave rules).
	t.Cleanup(func() { e.del(l, rtStale) })
	ipLive, ipStale := addrOf(rl, false).String(), addrOf(rs, false).String()
	ipamDir := filepath.Join(e.work, "ipam", l.Name)
	exec.Command("ip", "netns", "del", stale.name).Run()
	// the runtime forgets the stale attachment: its cached result goes, the live one's stays
	stalecache, _ := filepath.Glob(filepath.Join(e.cache, "results", "*"+stale.id+"*"))
	for _, f := range stalecache {
		b, _ := os.ReadFile(f)
		os.Remove(f)
		// ...until cleanup, whose DEL restores it so that plugins that need it clean up too
		t.Cleanup(func() { os.WriteFile(f, b, 0o600) })
	}
	if rulesMentioning(t, ipStale) == 0 {
		t.Logf("note: no rule mentions %s before GC (plugins keep no per-address rule text)", ipStale)
	}
	err = e.cni.GCNetworkList(context.Background(), l, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: live.id, IfName: "eth0"}}})
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ipamDir, ipStale)); !os.IsNotExist(err) {
		t.Errorf("GC left the stale address %s allocated", ipStale)
	}
	if _, err := os.Stat(filepath.Join(ipamDir, ipLive)); err != nil {
		t.Errorf("GC freed the live address %s: %v", ipLive, err)
	}
	if n := rulesMentioning(t, ipStale); n != 0 {
		t.Errorf("GC left %d rule lines mentioning the stale %s", n, ipStale)
	}
	if n := rulesMentioning(t, ipLive); n == 0 {
		t.Logf("note: no rule mentions live %s", ipLive)
	}
	// host-side devices a chained plugin made for the stale pod (bandwidth's ifb) are gone; the
	// veth went with the namespace
	for _, i := range rs.Interfaces {
		if i.Sandbox != "" || i.Name == e.bridge || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		if _, err := netlink.LinkByName(i.Name); err == nil {
			t.Errorf("GC left the stale pod's host interface %s", i.Name)
		}
	}
	for _, i := range rl.Interfaces {
		if i.Sandbox == "" && i.Name != e.bridge && !strings.HasPrefix(i.Name, "veth") {
			if _, err := netlink.LinkByName(i.Name); err != nil {
				t.Errorf("GC removed the live pod's host interface %s: %v", i.Name, err)
			}
		}
	}
}

func testStatus(t *testing.T, e *env) {
	l := e.conflist(listOpts{name: "status", portmap: true, firewall: true, subnet: 6})
	if err := e.cni.GetStatusNetworkList(context.Background(), l); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	out, err := plugin(t, e.dir, "host-local", pluginConfIPAM(t, l), "CNI_COMMAND=STATUS")
	if err != nil {
		t.Errorf("host-local STATUS: %v %s", err, out)
	}
}

func pluginConfIPAM(t *testing.T, l *libcni.NetworkConfigList) []byte {
	var m map[string]interface{}
	json.Unmarshal(l.Plugins[0].Bytes, &m)
	b, _ := json.Marshal(map[string]interface{}{"cniVersion": l.CNIVersion, "name": l.Name, "ipam": m["ipam"]})
	return b
}

// echoUDP answers every datagram on addr inside the pod with "udp-pong".
func echoUDP(t *testing.T, p *pod, addr string) {
	var pc net.PacketConn
	if err := p.do(t, func() (err error) { pc, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte("udp-pong"), from)
		}
	}()
}

// askUDP sends datagrams from the host to addr until one is answered (UDP may lose the first).
func askUDP(t *testing.T, addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := 0; i < 5; i++ {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(buf); err == nil {
			return string(buf[:n]), nil
		}
	}
	return "", fmt.Errorf("no answer from %s", addr)
}

// testSameBridge: firewall's ingressPolicy same-bridge lets a pod take connections from its own
// bridge and the host, and answers to its own connections, but not connections routed in from
// another bridge.
func testSameBridge(t *testing.T, e *env) {
	la := e.conflist(listOpts{name: "isoa", firewall: true, ingress: "same-bridge", subnet: 7})
	lb := e.conflist(listOpts{name: "isob", firewall: true, subnet: 8, bridge: e.bridge + "b"})
	a1, a2, b1 := e.pod("a1"), e.pod("a2"), e.pod("b1")
	ra := e.mustAdd(la, e.rt(a1, "eth0", nil))
	e.mustAdd(la, e.rt(a2, "eth0", nil))
	rb := e.mustAdd(lb, e.rt(b1, "eth0", nil))
	ipA, ipB := addrOf(ra, false).String(), addrOf(rb, false).String()
	serve(t, a1, "tcp", ":8080", "a1")
	serve(t, b1, "tcp", ":8080", "b1")
	if got, err := fetch(t, a2, ipA+":8080"); got != "a1" {
		t.Errorf("a2 -> a1 on the same bridge: %q %v", got, err)
	}
	if got, err := fetch(t, nil, ipA+":8080"); got != "a1" {
		t.Errorf("host -> a1: %q %v", got, err)
	}
	if got, err := fetch(t, a1, ipB+":8080"); got != "b1" {
		t.Errorf("a1 -> b1 (a1's own connection, answers must come back): %q %v", got, err)
	}
	if got, err := fetch(t, b1, ipA+":8080"); err == nil {
		t.Errorf("b1 on another bridge reached the isolated a1: %q", got)
	}
}
