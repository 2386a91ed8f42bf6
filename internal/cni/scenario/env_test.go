package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/netns"
)

const netnsDir = "/run/netns"

// pluginDir is the directory under test.
func pluginDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("scenario suite needs root (network namespaces, bridges, nftables)")
	}
	d := os.Getenv("BERTH_CNI_PLUGINS")
	if d == "" {
		_, file, _, _ := runtime.Caller(0)
		d = filepath.Join(filepath.Dir(file), "..", "..", "..", "bin", "cni")
	}
	d, _ = filepath.Abs(d)
	if _, err := os.Stat(filepath.Join(d, "bridge")); err != nil {
		t.Skipf("no plugins in %s (run make, or set BERTH_CNI_PLUGINS): %v", d, err)
	}
	return d
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// env is one spec version's world: a bridge, namespaces, a libcni instance with its own cache.
type env struct {
	t       *testing.T
	dir     string // plugins
	version string
	id      string // unique run id, used in every name
	work    string
	cni     *libcni.CNIConfig
	cache   string
	net4    string // "10.x.y"
	net6    string // "fd00:x:y::"
	bridge  string
	table   string
}

func newEnv(t *testing.T, dir, version string) *env {
	id := randHex(3)
	e := &env{t: t, dir: dir, version: version, id: id, work: t.TempDir()}
	b := []byte(id)
	e.net4 = fmt.Sprintf("10.%d.%d", 200+int(b[0])%50, int(b[1])%250)
	e.net6 = fmt.Sprintf("fd00:%s:%s::", id[:4], id[4:])
	e.bridge = "bs" + id
	e.table = "bstest" + id
	e.cache = filepath.Join(e.work, "cache")
	e.cni = libcni.NewCNIConfigWithCacheDir([]string{dir}, e.cache, nil)
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(e.bridge); err == nil {
			netlink.LinkDel(l)
		}
		// our plugins' tables (named by nftTable); the reference plugins ignore the field
		if c, err := nftables.New(); err == nil {
			for _, fam := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
				for _, sfx := range []string{"", "-pm", "-fw"} {
					if _, err := c.ListTableOfFamily(e.table+sfx, fam); err == nil {
						c.DelTable(&nftables.Table{Name: e.table + sfx, Family: fam})
						c.Flush()
					}
				}
			}
		}
		// the reference firewall's same-bridge rules are per bridge and outlive every DEL
		removeIsolationRules(e.bridge, e.bridge+"b")
		// cnitool's results live in libcni's default cache
		matches, _ := filepath.Glob("/var/lib/cni/results/bs" + id + "*")
		for _, m := range matches {
			os.Remove(m)
		}
	})
	return e
}

// pod is a network namespace created for the test.
type pod struct {
	name, path, id string
}

func (e *env) pod(name string) *pod {
	e.t.Helper()
	n := "bs" + e.id + "-" + name
	p, err := netns.Create(netnsDir, n)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { netns.Remove(p) })
	return &pod{name: n, path: p, id: "bs" + e.id + "-" + name}
}

func (p *pod) do(t *testing.T, fn func() error) error {
	t.Helper()
	ns, err := netns.Open(p.path)
	if err != nil {
		return err
	}
	defer ns.Close()
	return ns.Do(fn)
}

// conflist builds a network list for the env; extra plugins follow the bridge.
type listOpts struct {
	name      string
	dual      bool
	portmap   bool
	firewall  bool
	tuning    bool
	bandwidth string // raw JSON of the plugin, or ""
	subnet    int    // third-octet offset, so lists of one env do not overlap
	bridge    string // a bridge other than the env's (removed at cleanup)
	ingress   string // the firewall's ingressPolicy
}

func (e *env) conflist(o listOpts) *libcni.NetworkConfigList {
	e.t.Helper()
	ranges := fmt.Sprintf(`[[{"subnet":"%s.0/24"}]]`, e.shift(o.subnet))
	if o.dual {
		ranges = fmt.Sprintf(`[[{"subnet":"%s.0/24"}],[{"subnet":"%s%x:0/112"}]]`, e.shift(o.subnet), e.net6, o.subnet+1)
	}
	br := e.bridge
	if o.bridge != "" {
		br = o.bridge
		e.t.Cleanup(func() {
			if l, err := netlink.LinkByName(br); err == nil {
				netlink.LinkDel(l)
			}
		})
	}
	plugins := []string{fmt.Sprintf(`{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"hairpinMode":true,"nftTable":%q,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":%s,"routes":[{"dst":"%s.0.0/16"}]}}`, br, e.table, filepath.Join(e.work, "ipam"), ranges, e.net4[:strings.LastIndex(e.net4, ".")])}
	if o.portmap {
		plugins = append(plugins, fmt.Sprintf(`{"type":"portmap","capabilities":{"portMappings":true},"snat":true,"nftTable":%q}`, e.table+"-pm"))
	}
	if o.firewall {
		plugins = append(plugins, fmt.Sprintf(`{"type":"firewall","nftTable":%q,"ingressPolicy":%q}`, e.table+"-fw", o.ingress))
	}
	if o.tuning {
		plugins = append(plugins, `{"type":"tuning","sysctl":{"net.core.somaxconn":"555"}}`)
	}
	if o.bandwidth != "" {
		plugins = append(plugins, o.bandwidth)
	}
	name := "bs" + e.id + "-" + o.name
	raw := fmt.Sprintf(`{"cniVersion":%q,"name":%q,"plugins":[%s]}`, e.version, name, strings.Join(plugins, ","))
	l, err := libcni.ConfListFromBytes([]byte(raw))
	if err != nil {
		e.t.Fatalf("conflist: %v\n%s", err, raw)
	}
	return l
}

// shift returns the env's IPv4 /24 moved by n (each list of an env gets its own subnet).
func (e *env) shift(n int) string {
	var a, b int
	fmt.Sscanf(e.net4, "10.%d.%d", &a, &b)
	return fmt.Sprintf("10.%d.%d", a, (b+n)%250)
}

func (e *env) rt(p *pod, ifname string, caps map[string]interface{}) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.id, NetNS: p.path, IfName: ifname, CapabilityArgs: caps}
}

func (e *env) add(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (*types100.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := e.cni.AddNetworkList(ctx, l, rt)
	if err != nil {
		return nil, err
	}
	return types100.NewResultFromResult(r)
}

func (e *env) del(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.cni.DelNetworkList(ctx, l, rt)
}

func (e *env) check(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.cni.CheckNetworkList(ctx, l, rt)
}

// mustAdd adds and registers a DEL for cleanup.
func (e *env) mustAdd(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *types100.Result {
	e.t.Helper()
	r, err := e.add(l, rt)
	if err != nil {
		e.t.Fatalf("ADD %s to %s: %v", rt.ContainerID, l.Name, err)
	}
	e.t.Cleanup(func() { e.del(l, rt) })
	return r
}

func addrOf(r *types100.Result, v6 bool) net.IP {
	for _, ipc := range r.IPs {
		if (ipc.Address.IP.To4() == nil) == v6 {
			return ipc.Address.IP
		}
	}
	return nil
}

// serve listens on addr inside the pod (or on the host if p is nil) and answers every
// connection with token; it stops at cleanup.
func serve(t *testing.T, p *pod, network, addr, token string) {
	t.Helper()
	var ln net.Listener
	listen := func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	}
	var err error
	if p != nil {
		err = p.do(t, listen)
	} else {
		err = listen()
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(token))
			c.Close()
		}
	}()
}

// fetch connects to addr from inside the pod (or the host if p is nil) and returns what the
// server sent.
func fetch(t *testing.T, p *pod, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}
	var err error
	if p != nil {
		err = p.do(t, dial)
	} else {
		err = dial()
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// plugin runs one plugin binary directly and returns its stdout and exit error.
func plugin(t *testing.T, dir, name string, stdin []byte, env ...string) ([]byte, error) {
	t.Helper()
	c := exec.Command(filepath.Join(dir, name))
	c.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_PATH=" + dir}, env...)
	c.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	c.Stdout = &out
	err := c.Run()
	return out.Bytes(), err
}

// specError asserts a failed run whose stdout is an error structure with one of the codes.
func specError(t *testing.T, out []byte, runErr error, codes ...uint) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(runErr, &ee) {
		t.Fatalf("want a non-zero exit, got %v (stdout %q)", runErr, out)
	}
	var te types.Error
	if err := json.Unmarshal(out, &te); err != nil || te.Msg == "" {
		t.Fatalf("stdout is not a CNI error structure: %q (%v)", out, err)
	}
	for _, c := range codes {
		if te.Code == c {
			return
		}
	}
	t.Fatalf("error code %d (%s), want one of %v", te.Code, te.Msg, codes)
}

func ipamFiles(t *testing.T, dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if net.ParseIP(e.Name()) != nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// removeIsolationRules deletes the iptables rules the reference firewall plugin keeps for the
// given bridges (ingressPolicy same-bridge, CNI-ISOLATION-STAGE-*), and the chains and their
// FORWARD jumps once no bridge is left in them. berth's plugins never write iptables.
func removeIsolationRules(bridges ...string) {
	out, err := exec.Command("iptables-save", "-t", "filter").Output()
	if err != nil {
		return
	}
	left := false
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A CNI-ISOLATION-STAGE-") {
			continue
		}
		ours := false
		for _, b := range bridges {
			ours = ours || strings.Contains(line, " "+b+" ")
		}
		if !ours {
			if strings.Contains(line, " -i ") || strings.Contains(line, " -o ") {
				left = true
			}
			continue
		}
		args, err := splitRule(strings.TrimPrefix(line, "-A "))
		if err == nil {
			exec.Command("iptables", append([]string{"-t", "filter", "-D"}, args...)...).Run()
		}
	}
	if left {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A FORWARD ") && strings.Contains(line, "-j CNI-ISOLATION-STAGE-1") {
			if args, err := splitRule(strings.TrimPrefix(line, "-A ")); err == nil {
				exec.Command("iptables", append([]string{"-t", "filter", "-D"}, args...)...).Run()
			}
		}
	}
	for _, c := range []string{"CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"} {
		exec.Command("iptables", "-t", "filter", "-F", c).Run()
	}
	for _, c := range []string{"CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"} {
		exec.Command("iptables", "-t", "filter", "-X", c).Run()
	}
}

// splitRule splits an iptables-save rule into arguments, honouring double quotes.
func splitRule(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inQ, have := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"':
			inQ, have = !inQ, true
		case ch == '\\' && inQ && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case ch == ' ' && !inQ:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if inQ {
		return nil, fmt.Errorf("unbalanced quotes in %q", s)
	}
	if have {
		args = append(args, cur.String())
	}
	return args, nil
}
