package hostlocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-dev/berth/internal/cni"
)

func conf(t *testing.T, dataDir, ipam string) []byte {
	t.Helper()
	return []byte(fmt.Sprintf(`{"cniVersion":"1.1.0","name":"testnet","type":"bridge","ipam":{"type":"host-local","dataDir":%q,%s}}`, dataDir, ipam))
}

func add(t *testing.T, stdin []byte, id, ifname string) (*types100.Result, error) {
	t.Helper()
	r, err := Add(context.Background(), &skel.CmdArgs{ContainerID: id, IfName: ifname, StdinData: stdin})
	if err != nil {
		return nil, err
	}
	return r.(*types100.Result), nil
}

func TestAllocateDualStackAndRelease(t *testing.T) {
	dir := t.TempDir()
	stdin := conf(t, dir, `"ranges":[[{"subnet":"10.1.2.0/29"}],[{"subnet":"fd00:1::/120","gateway":"fd00:1::fe"}]],"routes":[{"dst":"0.0.0.0/0"}]`)
	r, err := add(t, stdin, "c1", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 2 {
		t.Fatalf("got %d IPs, want one per range set", len(r.IPs))
	}
	if got := r.IPs[0].Address.String(); got != "10.1.2.2/29" {
		t.Errorf("first IPv4 = %s, want 10.1.2.2/29 (gateway .1 skipped)", got)
	}
	if got := r.IPs[0].Gateway.String(); got != "10.1.2.1" {
		t.Errorf("IPv4 gateway = %s", got)
	}
	if got := r.IPs[1].Address.String(); got != "fd00:1::1/120" {
		t.Errorf("first IPv6 = %s, want fd00:1::1/120", got)
	}
	if len(r.Routes) != 1 {
		t.Errorf("routes = %v", r.Routes)
	}
	b, err := os.ReadFile(filepath.Join(dir, "testnet", "10.1.2.2"))
	if err != nil || string(b) != "c1\r\neth0" {
		t.Fatalf("allocation file = %q, %v", b, err)
	}
	// duplicate ADD for the same attachment is refused without touching the first allocation
	if _, err := add(t, stdin, "c1", "eth0"); !errors.Is(err, cni.ErrExists) {
		t.Fatalf("duplicate ADD: %v, want ErrExists", err)
	}
	if err := Del(context.Background(), &skel.CmdArgs{ContainerID: "c1", IfName: "eth0", StdinData: stdin}); err != nil {
		t.Fatal(err)
	}
	if err := Del(context.Background(), &skel.CmdArgs{ContainerID: "c1", IfName: "eth0", StdinData: stdin}); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "testnet", "10.1.2.2")); !os.IsNotExist(err) {
		t.Fatalf("allocation still there after DEL: %v", err)
	}
}

func TestExhaustRoundRobinReserved(t *testing.T) {
	dir := t.TempDir()
	// .0 network, .1 gateway, .7 broadcast, .3 reserved: .2 .4 .5 .6 usable
	stdin := conf(t, dir, `"ranges":[[{"subnet":"10.9.0.0/29"}]],"reserved":["10.9.0.3"]`)
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		r, err := add(t, stdin, fmt.Sprintf("c%d", i), "eth0")
		if err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
		a := r.IPs[0].Address.IP.String()
		if seen[a] || a == "10.9.0.3" || a == "10.9.0.1" {
			t.Fatalf("ADD %d got %s (seen %v)", i, a, seen)
		}
		seen[a] = true
	}
	if _, err := add(t, stdin, "c9", "eth0"); !errors.Is(err, cni.ErrTryAgain) {
		t.Fatalf("ADD into a full range: %v, want ErrTryAgain", err)
	}
	if err := Status(context.Background(), &skel.CmdArgs{StdinData: stdin}); !errors.Is(err, cni.ErrNotAvailable) {
		t.Fatalf("STATUS of a full range: %v, want ErrNotAvailable", err)
	}
	// Free c1's address: the next ADD gets it back (the only free one).
	if err := Del(context.Background(), &skel.CmdArgs{ContainerID: "c1", IfName: "eth0", StdinData: stdin}); err != nil {
		t.Fatal(err)
	}
	if _, err := add(t, stdin, "c9", "eth0"); err != nil {
		t.Fatalf("ADD after DEL: %v", err)
	}
}

func TestRequestedIPAndRangeLimits(t *testing.T) {
	dir := t.TempDir()
	stdin := conf(t, dir, `"ranges":[[{"subnet":"10.5.0.0/24","rangeStart":"10.5.0.100","rangeEnd":"10.5.0.110"}]]`)
	r, err := Add(context.Background(), &skel.CmdArgs{ContainerID: "a", IfName: "eth0", Args: "IgnoreUnknown=1;IP=10.5.0.105", StdinData: stdin})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.(*types100.Result).IPs[0].Address.IP.String(); got != "10.5.0.105" {
		t.Fatalf("requested IP: got %s", got)
	}
	if _, err := Add(context.Background(), &skel.CmdArgs{ContainerID: "b", IfName: "eth0", Args: "IP=10.5.0.105", StdinData: stdin}); !errors.Is(err, cni.ErrExists) {
		t.Fatalf("requesting a taken IP: %v", err)
	}
	if _, err := Add(context.Background(), &skel.CmdArgs{ContainerID: "b", IfName: "eth0", Args: "IP=10.6.0.1", StdinData: stdin}); !errors.Is(err, cni.ErrInvalidConfig) {
		t.Fatalf("requesting an IP outside the ranges: %v", err)
	}
	r2, err := add(t, stdin, "c", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	a := r2.IPs[0].Address.IP.String()
	if a < "10.5.0.100" || a > "10.5.0.110" {
		t.Fatalf("allocated %s outside rangeStart/rangeEnd", a)
	}
}

func TestGCKeepsValid(t *testing.T) {
	dir := t.TempDir()
	base := `"ranges":[[{"subnet":"10.7.0.0/24"}]]`
	stdin := conf(t, dir, base)
	for _, id := range []string{"keep", "stale1", "stale2"} {
		if _, err := add(t, stdin, id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	json.Unmarshal(stdin, &m)
	m["cni.dev/valid-attachments"] = []map[string]string{{"containerID": "keep", "ifname": "eth0"}}
	gcIn, _ := json.Marshal(m)
	if err := GC(context.Background(), &skel.CmdArgs{StdinData: gcIn}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "testnet"))
	var left []string
	for _, e := range ents {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			b, _ := os.ReadFile(filepath.Join(dir, "testnet", e.Name()))
			left = append(left, string(b))
		}
	}
	if len(left) != 1 || !strings.HasPrefix(left[0], "keep\r\n") {
		t.Fatalf("after GC: %q, want only keep's allocation", left)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, ipam := range map[string]string{
		"no ranges":        `"routes":[]`,
		"tiny subnet":      `"ranges":[[{"subnet":"10.0.0.0/31"}]]`,
		"mixed families":   `"ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"fd00::/64"}]]`,
		"overlapping sets": `"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.0.0/25"}]]`,
		"start outside":    `"ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.1.5"}]]`,
		"start after end":  `"ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.50","rangeEnd":"10.0.0.10"}]]`,
		"bad reserved":     `"ranges":[[{"subnet":"10.0.0.0/24"}]],"reserved":["nope"]`,
	} {
		if _, err := add(t, conf(t, dir, ipam), "x", "eth0"); !errors.Is(err, cni.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := add(t, []byte(`{"cniVersion":"1.0.0","name":"n","ipam":`), "x", "eth0"); !errors.Is(err, cni.ErrDecode) {
		t.Errorf("malformed JSON: %v, want ErrDecode", err)
	}
}
