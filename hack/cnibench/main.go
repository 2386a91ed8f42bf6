// Command cnibench times ADD and DEL of one network configuration list (bridge + host-local +
// portmap + firewall + tuning, one host port per pod) through libcni, as a runtime calls them,
// for several plugin directories in the same run: berth's and the reference plugins'. Pods are
// interleaved across the sets (pod i of every set, then pod i+1...), so load from elsewhere on the
// machine falls on every set alike. It prints `key: value` lines: medians, p95, means, the ratio
// of berth's median to each reference's, and the binaries' sizes.
//
// Usage: cnibench [-n 100] [-version 1.0.0] NAME=DIR [NAME=DIR...]   (the first set is berth's)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/netns"
)

type set struct {
	name, dir string
	cni       *libcni.CNIConfig
	list      *libcni.NetworkConfigList
	bridge    string
	table     string
	add, del  []float64
	fails     int
}

func main() {
	n := flag.Int("n", 100, "pods (network namespaces) per set, at most 250")
	version := flag.String("version", "1.0.0", "cniVersion of the list")
	flag.Parse()
	if flag.NArg() == 0 || *n < 1 || *n > 250 {
		fmt.Fprintln(os.Stderr, "usage: cnibench [-n N] [-version V] NAME=DIR...")
		os.Exit(2)
	}
	if err := run(*n, *version, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "cnibench:", err)
		os.Exit(1)
	}
}

func run(n int, version string, args []string) error {
	b := make([]byte, 2)
	rand.Read(b)
	id := hex.EncodeToString(b)
	work, err := os.MkdirTemp("", "cnibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var sets []*set
	for i, a := range args {
		name, dir, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("argument %q is not NAME=DIR", a)
		}
		dir, _ = filepath.Abs(dir)
		s := &set{name: name, dir: dir, bridge: fmt.Sprintf("cb%s%d", id, i), table: fmt.Sprintf("cnibench%s%d", id, i)}
		s.cni = libcni.NewCNIConfigWithCacheDir([]string{dir}, filepath.Join(work, name, "cache"), nil)
		raw := fmt.Sprintf(`{"cniVersion":%q,"name":"cnibench-%s-%d","plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"nftTable":%q,
  "ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.%d.%d.0/24"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true},"snat":true,"nftTable":"%s-pm"},
 {"type":"firewall","nftTable":"%s-fw"},
 {"type":"tuning","sysctl":{"net.core.somaxconn":"512"}}]}`, version, id, i, s.bridge, s.table,
			filepath.Join(work, name, "ipam"), 180+i, int(b[0])%250, s.table, s.table)
		if s.list, err = libcni.ConfListFromBytes([]byte(raw)); err != nil {
			return err
		}
		sets = append(sets, s)
	}
	ns := make([][]string, len(sets))
	defer func() {
		for si, s := range sets {
			for _, p := range ns[si] {
				netns.Remove(p)
			}
			if l, err := netlink.LinkByName(s.bridge); err == nil {
				netlink.LinkDel(l)
			}
			if c, err := nftables.New(); err == nil {
				for _, t := range []string{s.table, s.table + "-pm", s.table + "-fw"} {
					for _, f := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
						if _, err := c.ListTableOfFamily(t, f); err == nil {
							c.DelTable(&nftables.Table{Name: t, Family: f})
							c.Flush()
						}
					}
				}
			}
		}
	}()
	for si := range sets {
		for i := 0; i < n; i++ {
			p, err := netns.Create("/run/netns", fmt.Sprintf("cnibench-%s-%d-%d", id, si, i))
			if err != nil {
				return err
			}
			ns[si] = append(ns[si], p)
		}
	}
	rt := func(si, i int) *libcni.RuntimeConf {
		return &libcni.RuntimeConf{ContainerID: fmt.Sprintf("cnibench-%s-%d-%d", id, si, i), NetNS: ns[si][i], IfName: "eth0",
			CapabilityArgs: map[string]interface{}{"portMappings": []map[string]interface{}{
				{"hostPort": 40000 + si*300 + i, "containerPort": 80, "protocol": "tcp"}}}}
	}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		for si, s := range sets {
			t0 := time.Now()
			_, err := s.cni.AddNetworkList(ctx, s.list, rt(si, i))
			d := time.Since(t0)
			if err != nil {
				s.fails++
				fmt.Fprintf(os.Stderr, "%s ADD %d: %v\n", s.name, i, err)
				continue
			}
			s.add = append(s.add, ms(d))
		}
	}
	for i := 0; i < n; i++ {
		for si, s := range sets {
			t0 := time.Now()
			err := s.cni.DelNetworkList(ctx, s.list, rt(si, i))
			d := time.Since(t0)
			if err != nil {
				s.fails++
				fmt.Fprintf(os.Stderr, "%s DEL %d: %v\n", s.name, i, err)
				continue
			}
			s.del = append(s.del, ms(d))
		}
	}
	fmt.Printf("pods: %d\nspec_version: %s\n", n, version)
	for _, s := range sets {
		for _, op := range []struct {
			name string
			v    []float64
		}{{"add", s.add}, {"del", s.del}} {
			med, p95, mean := stats(op.v)
			fmt.Printf("%s_%s_ms_median: %.2f\n%s_%s_ms_p95: %.2f\n%s_%s_ms_mean: %.2f\n", s.name, op.name, med, s.name, op.name, p95, s.name, op.name, mean)
		}
		fmt.Printf("%s_failures: %d\n", s.name, s.fails)
		fmt.Printf("%s_binary_bytes: %d\n", s.name, binaryBytes(s.dir))
	}
	ours := sets[0]
	om, _, _ := stats(ours.add)
	od, _, _ := stats(ours.del)
	for _, s := range sets[1:] {
		rm, _, _ := stats(s.add)
		rd, _, _ := stats(s.del)
		fmt.Printf("ratio_add_%s_vs_%s: %.2f\nratio_del_%s_vs_%s: %.2f\n", ours.name, s.name, om/rm, ours.name, s.name, od/rd)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func stats(v []float64) (median, p95, mean float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		median = s[len(s)/2]
	} else {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(float64(len(s))*0.95+0.999) - 1
	if i >= len(s) {
		i = len(s) - 1
	}
	for _, x := range s {
		mean += x
	}
	return median, s[i], mean / float64(len(s))
}

// binaryBytes is the disk size of the distinct files behind the seven plugins berth replaces
// (hard links to one binary count once).
func binaryBytes(dir string) int64 {
	seen := map[uint64]bool{}
	var total int64
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap", "bandwidth", "firewall", "tuning"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			continue
		}
		ino := inode(fi)
		if seen[ino] {
			continue
		}
		seen[ino] = true
		total += fi.Size()
	}
	return total
}
