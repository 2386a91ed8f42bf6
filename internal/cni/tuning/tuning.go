// Package tuning is the tuning plugin: inside the container's network namespace it sets sysctls
// of the net.* tree and changes the interface's MAC address, MTU, promiscuous and all-multicast
// modes and transmit queue length. The values it replaced are saved in dataDir/<network>/ so that
// DEL can put them back; GC removes the saved state of attachments no longer valid. Sysctls are
// not restored: the namespace is the container's and goes with it.
package tuning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/netns"
	"github.com/berth-dev/berth/internal/sysctl"
)

// DefaultDataDir holds the saved link settings unless dataDir says otherwise.
const DefaultDataDir = "/run/berth/cni/tuning"

// NetConf is the tuning configuration; names follow the reference plugin.
type NetConf struct {
	cni.Conf
	DataDir       string            `json:"dataDir,omitempty"`
	SysCtl        map[string]string `json:"sysctl"`
	Mac           string            `json:"mac,omitempty"`
	Promisc       bool              `json:"promisc,omitempty"`
	Mtu           int               `json:"mtu,omitempty"`
	TxQLen        *int              `json:"txQLen,omitempty"`
	Allmulti      *bool             `json:"allmulti,omitempty"`
	RuntimeConfig struct {
		Mac string `json:"mac,omitempty"`
	} `json:"runtimeConfig,omitempty"`
	Args struct {
		Cni struct {
			SysCtl   map[string]string `json:"sysctl,omitempty"`
			Mac      string            `json:"mac,omitempty"`
			Promisc  *bool             `json:"promisc,omitempty"`
			Mtu      int               `json:"mtu,omitempty"`
			Allmulti *bool             `json:"allmulti,omitempty"`
			TxQLen   *int              `json:"txQLen,omitempty"`
		} `json:"cni,omitempty"`
	} `json:"args,omitempty"`
}

// saved is what DEL restores.
type saved struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
	Mac         string `json:"mac,omitempty"`
	Mtu         int    `json:"mtu,omitempty"`
	Promisc     *bool  `json:"promisc,omitempty"`
	Allmulti    *bool  `json:"allmulti,omitempty"`
	TxQLen      *int   `json:"txQLen,omitempty"`
}

// Funcs is the tuning plugin.
func Funcs() cni.Funcs {
	return cni.Funcs{Add: Add, Del: Del, Check: Check, GC: GC}
}

func load(ctx context.Context, args *skel.CmdArgs) (*NetConf, error) {
	n := &NetConf{}
	if err := cni.Decode(ctx, args.StdinData, n); err != nil {
		return nil, err
	}
	if n.DataDir == "" {
		n.DataDir = DefaultDataDir
	}
	a := n.Args.Cni
	for k, v := range a.SysCtl {
		if n.SysCtl == nil {
			n.SysCtl = map[string]string{}
		}
		n.SysCtl[k] = v
	}
	if a.Mac != "" {
		n.Mac = a.Mac
	}
	if n.RuntimeConfig.Mac != "" {
		n.Mac = n.RuntimeConfig.Mac
	}
	if a.Promisc != nil {
		n.Promisc = *a.Promisc
	}
	if a.Mtu != 0 {
		n.Mtu = a.Mtu
	}
	if a.Allmulti != nil {
		n.Allmulti = a.Allmulti
	}
	if a.TxQLen != nil {
		n.TxQLen = a.TxQLen
	}
	if n.Mac != "" {
		if hw, err := net.ParseMAC(n.Mac); err != nil || len(hw) != 6 {
			return nil, fmt.Errorf("mac %q is not an Ethernet address: %w", n.Mac, cni.ErrInvalidConfig)
		}
	}
	if n.Mtu < 0 || n.Mtu > 65535 {
		return nil, fmt.Errorf("mtu %d out of range: %w", n.Mtu, cni.ErrInvalidConfig)
	}
	if n.TxQLen != nil && *n.TxQLen < 0 {
		return nil, fmt.Errorf("txQLen %d is negative: %w", *n.TxQLen, cni.ErrInvalidConfig)
	}
	for k := range n.SysCtl {
		if _, err := sysctlKey(k, args.IfName); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// sysctlKey turns a configured key into a slashed key under net/, with "IFNAME" standing for the
// interface. Only the network namespace's own tree may be written: the rest is the host's.
func sysctlKey(k, ifname string) (string, error) {
	parts := strings.Split(strings.ReplaceAll(k, "/", "."), ".")
	for i, p := range parts {
		if p == "IFNAME" {
			parts[i], p = ifname, ifname
		}
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "/\x00") {
			return "", fmt.Errorf("sysctl %q: empty or parent component: %w", k, cni.ErrInvalidConfig)
		}
	}
	if parts[0] != "net" || len(parts) < 3 {
		return "", fmt.Errorf("sysctl %q: only net.* keys of the container's namespace may be set: %w", k, cni.ErrInvalidConfig)
	}
	return strings.Join(parts, "/"), nil
}

func statePath(n *NetConf, args *skel.CmdArgs) string {
	return filepath.Join(n.DataDir, n.Name, args.ContainerID+"-"+args.IfName+".json")
}

// Add applies the settings and passes prevResult through (with the new MAC, if it changed).
func Add(ctx context.Context, args *skel.CmdArgs) (types.Result, error) {
	n, err := load(ctx, args)
	if err != nil {
		return nil, err
	}
	prev, err := n.PrevResult100()
	if err != nil {
		return nil, err
	}
	ns, err := netns.Open(args.Netns)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	if len(n.SysCtl) > 0 {
		keys := make([]string, 0, len(n.SysCtl))
		for k := range n.SysCtl {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		err := ns.Do(func() error {
			for _, k := range keys {
				key, _ := sysctlKey(k, args.IfName)
				if err := sysctl.Set(key, n.SysCtl[k]); err != nil {
					return fmt.Errorf("%w: %w", cni.ErrInvalidConfig, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	linkWork := n.Mac != "" || n.Mtu != 0 || n.Promisc || n.Allmulti != nil || n.TxQLen != nil
	if linkWork {
		nh, err := ns.Netlink()
		if err != nil {
			return nil, err
		}
		defer nh.Close()
		l, err := nh.LinkByName(args.IfName)
		if err != nil {
			return nil, fmt.Errorf("interface %s in %s: %w", args.IfName, args.Netns, err)
		}
		at := l.Attrs()
		st := saved{ContainerID: args.ContainerID, IfName: args.IfName}
		if n.Mac != "" {
			st.Mac = at.HardwareAddr.String()
		}
		if n.Mtu != 0 {
			st.Mtu = at.MTU
		}
		if n.Promisc {
			p := at.Promisc != 0
			st.Promisc = &p
		}
		if n.Allmulti != nil {
			a := at.RawFlags&0x200 != 0 // IFF_ALLMULTI
			st.Allmulti = &a
		}
		if n.TxQLen != nil {
			q := at.TxQLen
			st.TxQLen = &q
		}
		if err := writeState(statePath(n, args), &st); err != nil {
			return nil, err
		}
		if err := apply(nh, l, n.Mac, n.Mtu, boolp(n.Promisc), n.Allmulti, n.TxQLen); err != nil {
			return nil, err
		}
		if n.Mac != "" && prev != nil {
			for _, i := range prev.Interfaces {
				if i.Name == args.IfName && i.Sandbox != "" {
					i.Mac = n.Mac
				}
			}
		}
	}
	if prev == nil {
		return &types100.Result{CNIVersion: types100.ImplementedSpecVersion}, nil
	}
	return prev, nil
}

func boolp(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

func apply(nh *netlink.Handle, l netlink.Link, mac string, mtu int, promisc, allmulti *bool, txq *int) error {
	name := l.Attrs().Name
	if mac != "" {
		hw, _ := net.ParseMAC(mac)
		if err := nh.LinkSetHardwareAddr(l, hw); err != nil {
			return fmt.Errorf("set MAC of %s to %s: %w", name, mac, err)
		}
	}
	if mtu != 0 {
		if err := nh.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set MTU of %s to %d: %w", name, mtu, err)
		}
	}
	if promisc != nil {
		var err error
		if *promisc {
			err = nh.SetPromiscOn(l)
		} else {
			err = nh.SetPromiscOff(l)
		}
		if err != nil {
			return fmt.Errorf("promiscuous mode of %s: %w", name, err)
		}
	}
	if allmulti != nil {
		var err error
		if *allmulti {
			err = nh.LinkSetAllmulticastOn(l)
		} else {
			err = nh.LinkSetAllmulticastOff(l)
		}
		if err != nil {
			return fmt.Errorf("all-multicast mode of %s: %w", name, err)
		}
	}
	if txq != nil {
		if err := nh.LinkSetTxQLen(l, *txq); err != nil {
			return fmt.Errorf("txqueuelen of %s: %w", name, err)
		}
	}
	return nil
}

// writeState saves st atomically: a torn file would restore garbage.
func writeState(path string, st *saved) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("tuning state dir: %w: %w", cni.ErrIO, err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("tuning state: %w: %w", cni.ErrIO, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tuning state: %w: %w", cni.ErrIO, err)
	}
	return nil
}

// Del restores the saved link settings if the interface is still there, and forgets them.
func Del(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	p := statePath(n, args)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tuning state: %w: %w", cni.ErrIO, err)
	}
	var st saved
	if json.Unmarshal(b, &st) == nil && args.Netns != "" {
		if ns, err := netns.Open(args.Netns); err == nil {
			if nh, err := ns.Netlink(); err == nil {
				if l, err := nh.LinkByName(args.IfName); err == nil {
					if err := apply(nh, l, st.Mac, st.Mtu, st.Promisc, st.Allmulti, st.TxQLen); err != nil {
						cni.Logger(ctx).Warn("restoring link settings", "err", err)
					}
				}
				nh.Close()
			}
			ns.Close()
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tuning state: %w: %w", cni.ErrIO, err)
	}
	return nil
}

// Check verifies the sysctls and link settings still hold.
func Check(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	ns, err := netns.Open(args.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	if len(n.SysCtl) > 0 {
		err := ns.Do(func() error {
			for k, v := range n.SysCtl {
				key, _ := sysctlKey(k, args.IfName)
				got, err := sysctl.Get(key)
				if err != nil {
					return err
				}
				if strings.TrimSpace(got) != strings.TrimSpace(v) {
					return fmt.Errorf("sysctl %s is %q, want %q: %w", k, got, v, cni.ErrCheck)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if n.Mac == "" && n.Mtu == 0 && !n.Promisc {
		return nil
	}
	nh, err := ns.Netlink()
	if err != nil {
		return err
	}
	defer nh.Close()
	l, err := nh.LinkByName(args.IfName)
	if err != nil {
		return fmt.Errorf("interface %s: %w: %w", args.IfName, cni.ErrCheck, err)
	}
	at := l.Attrs()
	switch {
	case n.Mac != "" && !strings.EqualFold(at.HardwareAddr.String(), n.Mac):
		return fmt.Errorf("MAC of %s is %s, want %s: %w", args.IfName, at.HardwareAddr, n.Mac, cni.ErrCheck)
	case n.Mtu != 0 && at.MTU != n.Mtu:
		return fmt.Errorf("MTU of %s is %d, want %d: %w", args.IfName, at.MTU, n.Mtu, cni.ErrCheck)
	case n.Promisc && at.Promisc == 0:
		return fmt.Errorf("%s is not promiscuous: %w", args.IfName, cni.ErrCheck)
	}
	return nil
}

// GC forgets the saved settings of attachments that are no longer valid.
func GC(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	valid := map[[2]string]bool{}
	for _, a := range n.ValidAttachments {
		valid[[2]string{a.ContainerID, a.IfName}] = true
	}
	dir := filepath.Join(n.DataDir, n.Name)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tuning state: %w: %w", cni.ErrIO, err)
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var st saved
		if json.Unmarshal(b, &st) != nil || !valid[[2]string{st.ContainerID, st.IfName}] {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
