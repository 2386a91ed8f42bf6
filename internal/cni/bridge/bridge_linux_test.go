package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/cni/hostlocal"
	"github.com/berth-dev/berth/internal/netns"
)

// world is one test's bridge, table, IPAM directory and namespaces, all removed at cleanup.
type world struct {
	t      *testing.T
	id     string
	bridge string
	table  string
	ipam   string
	net    string // "10.a.b"
	ctx    context.Context
}

func newWorld(t *testing.T) *world {
	if os.Geteuid() != 0 {
		t.Skip("bridge tests need root (namespaces, links, nftables)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	w := &world{t: t, id: id, bridge: "bt" + id, table: "bttest" + id, ipam: t.TempDir(),
		net: fmt.Sprintf("10.%d.%d", 150+int(b[0])%40, int(b[1])%250)}
	// IPAM runs in process: the table names host-local, and CNI_PATH's host-local is this binary.
	dir := t.TempDir()
	self, _ := os.Executable()
	if err := os.Symlink(self, dir+"/host-local"); err != nil {
		t.Fatal(err)
	}
	w.ctx = cni.WithTable(context.Background(), cni.Table{"host-local": hostlocal.Funcs()})
	t.Setenv("CNI_PATH", dir)
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(w.bridge); err == nil {
			netlink.LinkDel(l)
		}
		if c, err := nftables.New(); err == nil {
			for _, f := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
				if _, err := c.ListTableOfFamily(w.table, f); err == nil {
					c.DelTable(&nftables.Table{Name: w.table, Family: f})
					c.Flush()
				}
			}
		}
	})
	return w
}

func (w *world) conf(extra string) []byte {
	return []byte(fmt.Sprintf(`{"cniVersion":"1.1.0","name":"bt%s","type":"bridge","bridge":%q,"nftTable":%q,"syncDel":true%s,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"%s.0/24"}]]}}`, w.id, w.bridge, w.table, extra, w.ipam, w.net))
}

func (w *world) ns(name string) string {
	p, err := netns.Create("/run/netns", "bt"+w.id+"-"+name)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { netns.Remove(p) })
	return p
}

func (w *world) add(conf []byte, nsPath, id string) *types100.Result {
	w.t.Helper()
	args := &skel.CmdArgs{ContainerID: id, Netns: nsPath, IfName: "eth0", StdinData: conf, Path: os.Getenv("CNI_PATH")}
	r, err := Add(w.ctx, args)
	if err != nil {
		w.t.Fatalf("ADD %s: %v", id, err)
	}
	w.t.Cleanup(func() { Del(w.ctx, args) })
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func in(t *testing.T, nsPath string, fn func() error) error {
	t.Helper()
	ns, err := netns.Open(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	return ns.Do(fn)
}

// peerAddr listens inside nsPath and reports the source address of the first connection.
func peerAddr(t *testing.T, nsPath, addr string) <-chan string {
	var ln net.Listener
	if err := in(t, nsPath, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- ""
			return
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		c.Write([]byte("ok"))
		c.Close()
		ch <- host
	}()
	return ch
}

func dialFrom(t *testing.T, nsPath, addr string) error {
	return in(t, nsPath, func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		return err
	})
}

// ipMasq rewrites a pod's traffic leaving its subnet to the host's address, and leaves traffic
// inside the subnet alone.
func TestIPMasqScopedToSubnet(t *testing.T) {
	w := newWorld(t)
	conf := w.conf(`,"isDefaultGateway":true,"ipMasq":true`)
	p1, p2 := w.ns("p1"), w.ns("p2")
	r1 := w.add(conf, p1, "p1")
	r2 := w.add(conf, p2, "p2")
	// "outside": a namespace behind a veth of the host, on its own /30
	out := w.ns("out")
	outNet := fmt.Sprintf("10.%d.%d", 190+int(w.id[0])%10, int(w.id[1])%250)
	hostEnd := "bto" + w.id
	outNS, _ := netns.Open(out)
	defer outNS.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd}, PeerName: "eth0", PeerNamespace: netlink.NsFd(outNS.Fd())}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(hostEnd); err == nil {
			netlink.LinkDel(l)
		}
	})
	hl, _ := netlink.LinkByName(hostEnd)
	a, _ := netlink.ParseAddr(outNet + ".1/30")
	netlink.AddrAdd(hl, a)
	netlink.LinkSetUp(hl)
	oh, _ := outNS.Netlink()
	defer oh.Close()
	ol, _ := oh.LinkByName("eth0")
	b, _ := netlink.ParseAddr(outNet + ".2/30")
	oh.AddrAdd(ol, b)
	oh.LinkSetUp(ol)
	lo, _ := oh.LinkByName("lo")
	oh.LinkSetUp(lo)

	src := peerAddr(t, out, outNet+".2:7000")
	if err := dialFrom(t, p1, outNet+".2:7000"); err != nil {
		t.Fatalf("pod -> outside: %v", err)
	}
	if got := <-src; got != outNet+".1" {
		t.Errorf("outside saw %s, want the host's %s.1 (masqueraded)", got, outNet)
	}
	src = peerAddr(t, p2, r2.IPs[0].Address.IP.String()+":7001")
	if err := dialFrom(t, p1, r2.IPs[0].Address.IP.String()+":7001"); err != nil {
		t.Fatalf("pod -> pod: %v", err)
	}
	if got := <-src; got != r1.IPs[0].Address.IP.String() {
		t.Errorf("p2 saw %s, want p1's own %s (no masquerade inside the subnet)", got, r1.IPs[0].Address.IP)
	}
	// DEL removes p1's elements
	if err := Del(w.ctx, &skel.CmdArgs{ContainerID: "p1", Netns: p1, IfName: "eth0", StdinData: conf, Path: os.Getenv("CNI_PATH")}); err != nil {
		t.Fatal(err)
	}
	c, _ := nftables.New()
	s, err := c.GetSetByName(&nftables.Table{Family: nftables.TableFamilyINet, Name: w.table}, "masq4")
	if err != nil {
		t.Fatal(err)
	}
	els, _ := c.GetSetElements(s)
	for _, e := range els {
		if strings.Contains(e.Comment, " p1 ") {
			t.Errorf("masq4 still holds p1's element after DEL: %v", e)
		}
	}
	if len(els) != 1 {
		t.Errorf("masq4 has %d elements, want p2's only", len(els))
	}
}

// macspoofchk drops frames from a pod whose source MAC is not the one ADD gave it.
func TestMacSpoofCheck(t *testing.T) {
	w := newWorld(t)
	conf := w.conf(`,"isGateway":true,"macspoofchk":true`)
	p1, p2 := w.ns("p1"), w.ns("p2")
	r1 := w.add(conf, p1, "p1")
	w.add(conf, p2, "p2")
	target := r1.IPs[0].Address.IP.String() + ":7002"
	peerAddr(t, p1, target)
	if err := dialFrom(t, p2, target); err != nil {
		t.Fatalf("p2 -> p1 with its own MAC: %v", err)
	}
	if err := in(t, p2, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		hw, _ := net.ParseMAC("02:00:00:be:e7:01")
		return netlink.LinkSetHardwareAddr(l, hw)
	}); err != nil {
		t.Fatal(err)
	}
	peerAddr(t, p1, r1.IPs[0].Address.IP.String()+":7003")
	if err := dialFrom(t, p2, r1.IPs[0].Address.IP.String()+":7003"); err == nil {
		t.Errorf("p2 reached p1 with a spoofed MAC")
	}
}

// vlan: the port carries the VLAN untagged as its PVID, without VLAN 1, and the gateway lives on
// the bridge's VLAN interface.
func TestVlan(t *testing.T) {
	probe := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "btprobe" + randHex(3)}}
	on := true
	probe.VlanFiltering = &on
	if err := netlink.LinkAdd(probe); err != nil {
		t.Skipf("this kernel cannot create a bridge with VLAN filtering (%v): vlan is untestable here", err)
	}
	netlink.LinkDel(probe)
	w := newWorld(t)
	conf := w.conf(`,"isGateway":true,"vlan":42`)
	p := w.ns("p")
	r := w.add(conf, p, "p")
	br, err := netlink.LinkByName(w.bridge)
	if err != nil {
		t.Fatal(err)
	}
	if vf := br.(*netlink.Bridge).VlanFiltering; vf == nil || !*vf {
		t.Errorf("bridge has no vlan filtering")
	}
	host, err := netlink.LinkByName(r.Interfaces[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	vl, _ := netlink.BridgeVlanList()
	found := false
	for _, v := range vl[int32(host.Attrs().Index)] {
		if v.Vid == 42 && v.PortVID() && v.EngressUntag() {
			found = true
		}
		if v.Vid == 1 {
			t.Errorf("default vlan 1 kept on the port")
		}
	}
	if !found {
		t.Errorf("port has no untagged pvid 42: %v", vl[int32(host.Attrs().Index)])
	}
	if _, err := netlink.LinkByName(fmt.Sprintf("%s.42", w.bridge)); err != nil {
		t.Errorf("no gateway vlan interface: %v", err)
	}
}

// mtu, promiscMode, hairpinMode, the mac capability and isDefaultGateway end up in the kernel as
// configured, and CHECK notices the port leaving the bridge.
func TestLinkOptions(t *testing.T) {
	w := newWorld(t)
	conf := w.conf(`,"isDefaultGateway":true,"mtu":1400,"promiscMode":true,"hairpinMode":true,"runtimeConfig":{"mac":"02:00:00:00:42:01"}`)
	p := w.ns("p")
	r := w.add(conf, p, "p")
	br, err := netlink.LinkByName(w.bridge)
	if err != nil {
		t.Fatal(err)
	}
	if br.Attrs().Promisc == 0 {
		t.Errorf("bridge not promiscuous")
	}
	host, err := netlink.LinkByName(r.Interfaces[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	if host.Attrs().MTU != 1400 {
		t.Errorf("host end MTU %d", host.Attrs().MTU)
	}
	if pi, err := netlink.LinkGetProtinfo(host); err != nil || !pi.Hairpin {
		t.Errorf("hairpin not set on %s: %+v %v", host.Attrs().Name, pi, err)
	}
	if r.Interfaces[2].Mac != "02:00:00:00:42:01" {
		t.Errorf("container MAC %s, want the mac capability's", r.Interfaces[2].Mac)
	}
	err = in(t, p, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if l.Attrs().MTU != 1400 {
			t.Errorf("container MTU %d", l.Attrs().MTU)
		}
		routes, _ := netlink.RouteList(l, netlink.FAMILY_V4)
		for _, rt := range routes {
			if rt.Dst == nil || rt.Dst.String() == "0.0.0.0/0" {
				if rt.Gw.String() != w.net+".1" {
					t.Errorf("default route via %s", rt.Gw)
				}
				return nil
			}
		}
		t.Errorf("no default route in the pod: %v", routes)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// CHECK notices the host end leaving the bridge
	prev := fmt.Sprintf(`,"prevResult":%s`, mustJSON(t, r))
	check := &skel.CmdArgs{ContainerID: "p", Netns: p, IfName: "eth0", StdinData: w.conf(`,"isDefaultGateway":true` + prev), Path: os.Getenv("CNI_PATH")}
	if err := Check(w.ctx, check); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	netlink.LinkSetNoMaster(host)
	if err := Check(w.ctx, check); err == nil {
		t.Errorf("CHECK passed with the host end off the bridge")
	}
}

func mustJSON(t *testing.T, r *types100.Result) string {
	var sb strings.Builder
	if err := r.PrintTo(&sb); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// GC forwards to IPAM and drops the masquerade and macspoofchk elements of attachments that are
// no longer valid, keeping the valid ones'.
func TestGCDropsStaleElements(t *testing.T) {
	w := newWorld(t)
	conf := w.conf(`,"isGateway":true,"ipMasq":true,"macspoofchk":true`)
	p1, p2 := w.ns("p1"), w.ns("p2")
	r1 := w.add(conf, p1, "p1")
	w.add(conf, p2, "p2")
	var m map[string]interface{}
	json.Unmarshal(conf, &m)
	m["cni.dev/valid-attachments"] = []map[string]string{{"containerID": "p2", "ifname": "eth0"}}
	gc, _ := json.Marshal(m)
	if err := GC(w.ctx, &skel.CmdArgs{StdinData: gc, Path: os.Getenv("CNI_PATH")}); err != nil {
		t.Fatal(err)
	}
	c, _ := nftables.New()
	for _, ref := range []struct {
		fam nftables.TableFamily
		set string
	}{{nftables.TableFamilyINet, "masq4"}, {nftables.TableFamilyINet, "nomasq4"}, {nftables.TableFamilyBridge, "ports"}, {nftables.TableFamilyBridge, "macs"}} {
		els, err := c.GetSetElements(&nftables.Set{Table: &nftables.Table{Family: ref.fam, Name: w.table}, Name: ref.set})
		if err != nil {
			t.Fatalf("%s: %v", ref.set, err)
		}
		p2s := 0
		for _, e := range els {
			if strings.Contains(e.Comment, " p1 ") {
				t.Errorf("%s keeps p1's element after GC", ref.set)
			}
			if strings.Contains(e.Comment, " p2 ") {
				p2s++
			}
		}
		if p2s == 0 {
			t.Errorf("%s lost p2's elements", ref.set)
		}
	}
	if _, err := os.Stat(filepath.Join(w.ipam, "bt"+w.id, r1.IPs[0].Address.IP.String())); !os.IsNotExist(err) {
		t.Errorf("GC kept p1's address: %v", err)
	}
}
