package tuning

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/netns"
	"github.com/berth-dev/berth/internal/sysctl"
)

// A veth pair inside a fresh namespace stands for the pod's interface (this kernel has no dummy).
func pod(t *testing.T) string {
	if os.Geteuid() != 0 {
		t.Skip("tuning tests need root (namespaces, links)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	p, err := netns.Create("/run/netns", "tt"+hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Remove(p) })
	ns, _ := netns.Open(p)
	defer ns.Close()
	h, _ := ns.Netlink()
	defer h.Close()
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1500, TxQLen: 1000}, PeerName: "peer0"}
	if err := h.LinkAdd(d); err != nil {
		t.Fatal(err)
	}
	return p
}

func link(t *testing.T, p string) netlink.Link {
	ns, _ := netns.Open(p)
	defer ns.Close()
	h, _ := ns.Netlink()
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestApplyAndRestore(t *testing.T) {
	p := pod(t)
	orig := link(t, p)
	dir := t.TempDir()
	conf := []byte(fmt.Sprintf(`{"cniVersion":"1.1.0","name":"tnet","type":"tuning","dataDir":%q,
		"sysctl":{"net.ipv4.conf.IFNAME.arp_ignore":"1","net.core.somaxconn":"777"},
		"mac":"02:00:00:7e:57:01","mtu":1280,"promisc":true,"allmulti":true,"txQLen":50,
		"prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mac":%q,"sandbox":%q}]}}`, dir, orig.Attrs().HardwareAddr, p))
	args := &skel.CmdArgs{ContainerID: "ctr", Netns: p, IfName: "eth0", StdinData: conf}
	r, err := Add(context.Background(), args)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	var res struct {
		Interfaces []struct{ Mac string } `json:"interfaces"`
	}
	json.Unmarshal(b, &res)
	if len(res.Interfaces) != 1 || res.Interfaces[0].Mac != "02:00:00:7e:57:01" {
		t.Errorf("result interfaces %s, want the new MAC", b)
	}
	l := link(t, p).Attrs()
	if l.HardwareAddr.String() != "02:00:00:7e:57:01" || l.MTU != 1280 || l.Promisc == 0 || l.RawFlags&0x200 == 0 || l.TxQLen != 50 {
		t.Errorf("after ADD: mac %s mtu %d promisc %d flags %#x txqlen %d", l.HardwareAddr, l.MTU, l.Promisc, l.RawFlags, l.TxQLen)
	}
	ns, _ := netns.Open(p)
	defer ns.Close()
	ns.Do(func() error {
		for k, want := range map[string]string{"net/ipv4/conf/eth0/arp_ignore": "1", "net/core/somaxconn": "777"} {
			if got, err := sysctl.Get(k); got != want {
				t.Errorf("sysctl %s = %q (%v), want %q", k, got, err, want)
			}
		}
		return nil
	})
	if err := Check(context.Background(), args); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
	if err := Del(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	l = link(t, p).Attrs()
	if l.HardwareAddr.String() != orig.Attrs().HardwareAddr.String() || l.MTU != 1500 || l.Promisc != 0 || l.RawFlags&0x200 != 0 || l.TxQLen != 1000 {
		t.Errorf("after DEL: mac %s mtu %d promisc %d flags %#x txqlen %d, want the originals", l.HardwareAddr, l.MTU, l.Promisc, l.RawFlags, l.TxQLen)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tnet")); len(ents) != 0 {
		t.Errorf("state left after DEL: %v", ents)
	}
	if err := Del(context.Background(), args); err != nil {
		t.Errorf("second DEL: %v", err)
	}
}

func TestGCForgetsStaleState(t *testing.T) {
	p := pod(t)
	dir := t.TempDir()
	conf := func(extra string) []byte {
		return []byte(fmt.Sprintf(`{"cniVersion":"1.1.0","name":"tnet","type":"tuning","dataDir":%q,"mtu":1400%s}`, dir, extra))
	}
	if _, err := Add(context.Background(), &skel.CmdArgs{ContainerID: "stale", Netns: p, IfName: "eth0", StdinData: conf("")}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tnet", "keep-eth0.json"), []byte(`{"containerID":"keep","ifname":"eth0","mtu":1500}`), 0o600)
	gc := conf(`,"cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]`)
	if err := GC(context.Background(), &skel.CmdArgs{StdinData: gc}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "tnet"))
	if len(ents) != 1 || ents[0].Name() != "keep-eth0.json" {
		t.Errorf("after GC: %v, want only keep's state", ents)
	}
}

func TestRefusesHostSysctls(t *testing.T) {
	for _, k := range []string{"kernel.panic", "net", "vm.swappiness", "net.ipv4.conf.IFNAME.x"} {
		_, err := sysctlKey(k, "../../../kernel")
		if err == nil {
			t.Errorf("%q accepted", k)
		}
	}
	if _, err := sysctlKey("net.ipv4.conf.IFNAME.arp_ignore", "eth0"); err != nil {
		t.Errorf("valid key refused: %v", err)
	}
}
