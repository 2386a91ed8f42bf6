// Package bandwidth is the bandwidth plugin: it shapes a pod's traffic with token-bucket filters
// on the host side. Traffic into the pod (ingress) is shaped by a tbf root qdisc on the host end
// of the pod's veth; traffic out of the pod (egress) arrives on that host end as ingress, where a
// u32 filter redirects it to an ifb device carrying a second tbf. The ifb's name derives from the
// attachment and its alias is the attachment's tag, so DEL and GC find it without prevResult.
package bandwidth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/netns"
)

// Entry is a pair of rate and burst limits in bits per second and bits.
type Entry struct {
	IngressRate  uint64 `json:"ingressRate"`
	IngressBurst uint64 `json:"ingressBurst"`
	EgressRate   uint64 `json:"egressRate"`
	EgressBurst  uint64 `json:"egressBurst"`
}

// NetConf is the bandwidth configuration; names follow the reference plugin.
type NetConf struct {
	cni.Conf
	Entry
	RuntimeConfig struct {
		Bandwidth *Entry `json:"bandwidth,omitempty"`
	} `json:"runtimeConfig,omitempty"`
}

// latency bounds how long a packet may wait in a tbf queue (the queue's byte limit follows).
const latencyMS = 25

const aliasPrefix = "berth-cni-bw "

// Funcs is the bandwidth plugin.
func Funcs() cni.Funcs {
	return cni.Funcs{Add: Add, Del: Del, Check: Check, GC: GC}
}

func load(ctx context.Context, args *skel.CmdArgs) (*NetConf, error) {
	n := &NetConf{}
	if err := cni.Decode(ctx, args.StdinData, n); err != nil {
		return nil, err
	}
	if n.RuntimeConfig.Bandwidth != nil {
		n.Entry = *n.RuntimeConfig.Bandwidth
	}
	e := n.Entry
	if (e.IngressRate == 0) != (e.IngressBurst == 0) || (e.EgressRate == 0) != (e.EgressBurst == 0) {
		return nil, fmt.Errorf("a rate needs its burst and a burst its rate: %w", cni.ErrInvalidConfig)
	}
	for _, v := range []uint64{e.IngressRate, e.EgressRate} {
		if v != 0 && v < 8 {
			return nil, fmt.Errorf("rate %d bit/s is below one byte per second: %w", v, cni.ErrInvalidConfig)
		}
	}
	for _, v := range []uint64{e.IngressBurst, e.EgressBurst} {
		if v/8 > 1<<31 {
			return nil, fmt.Errorf("burst %d bits too large: %w", v, cni.ErrInvalidConfig)
		}
	}
	return n, nil
}

// ifbName is "bwb" and 12 hex digits of the attachment's hash: stable, so DEL finds it.
func ifbName(network, id, ifname string) string {
	s := sha256.Sum256([]byte(network + "\x00" + id + "\x00" + ifname))
	return "bwb" + hex.EncodeToString(s[:6])
}

// hostPeer finds the host end of the container interface's veth.
func hostPeer(args *skel.CmdArgs) (netlink.Link, error) {
	ns, err := netns.Open(args.Netns)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	nh, err := ns.Netlink()
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	l, err := nh.LinkByName(args.IfName)
	if err != nil {
		return nil, fmt.Errorf("interface %s in %s: %w", args.IfName, args.Netns, err)
	}
	v, ok := l.(*netlink.Veth)
	if !ok || v.ParentIndex == 0 {
		return nil, fmt.Errorf("%s in %s is not a veth with a host end: %w", args.IfName, args.Netns, cni.ErrInvalidConfig)
	}
	h, err := netlink.LinkByIndex(v.ParentIndex)
	if err != nil {
		return nil, fmt.Errorf("host end of %s (index %d): %w", args.IfName, v.ParentIndex, err)
	}
	return h, nil
}

func tbf(link netlink.Link, rateBits, burstBits uint64) error {
	rate := rateBits / 8
	burst := uint32(burstBits / 8)
	limit := uint64(rate)*latencyMS/1000 + uint64(burst)
	if limit > 1<<31 {
		limit = 1 << 31
	}
	q := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       rate,
		Limit:      uint32(limit),
		Buffer:     netlink.Xmittime(rate, burst),
	}
	if err := netlink.QdiscReplace(q); err != nil {
		return fmt.Errorf("tbf on %s: %w", link.Attrs().Name, err)
	}
	return nil
}

// Add installs the shapers and passes prevResult through.
func Add(ctx context.Context, args *skel.CmdArgs) (types.Result, error) {
	n, err := load(ctx, args)
	if err != nil {
		return nil, err
	}
	prev, err := n.RequirePrevResult("bandwidth")
	if err != nil {
		return nil, err
	}
	if n.IngressRate == 0 && n.EgressRate == 0 {
		return prev, nil
	}
	host, err := hostPeer(args)
	if err != nil {
		return nil, err
	}
	if n.IngressRate > 0 {
		if err := tbf(host, n.IngressRate, n.IngressBurst); err != nil {
			return nil, err
		}
	}
	if n.EgressRate > 0 {
		ifb, err := ensureIfb(n, args, host)
		if err != nil {
			return nil, err
		}
		if err := tbf(ifb, n.EgressRate, n.EgressBurst); err != nil {
			return nil, err
		}
		ing := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: host.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}}
		if err := netlink.QdiscReplace(ing); err != nil {
			return nil, fmt.Errorf("ingress qdisc on %s: %w", host.Attrs().Name, err)
		}
		f := &netlink.U32{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: host.Attrs().Index, Parent: netlink.MakeHandle(0xffff, 0), Priority: 1, Protocol: unix.ETH_P_ALL},
			Sel:         &netlink.TcU32Sel{Nkeys: 1, Flags: netlink.TC_U32_TERMINAL, Keys: []netlink.TcU32Key{{}}},
			Actions:     []netlink.Action{netlink.NewMirredAction(ifb.Attrs().Index)},
		}
		if err := netlink.FilterReplace(f); err != nil {
			return nil, fmt.Errorf("redirect %s to %s: %w", host.Attrs().Name, ifb.Attrs().Name, err)
		}
		prev.Interfaces = append(prev.Interfaces, &types100.Interface{Name: ifb.Attrs().Name, Mac: ifb.Attrs().HardwareAddr.String()})
	}
	return prev, nil
}

func ensureIfb(n *NetConf, args *skel.CmdArgs, host netlink.Link) (netlink.Link, error) {
	name := ifbName(n.Name, args.ContainerID, args.IfName)
	if l, err := netlink.LinkByName(name); err == nil {
		return l, nil
	}
	ifb := &netlink.Ifb{LinkAttrs: netlink.NewLinkAttrs()}
	ifb.Name = name
	ifb.MTU = host.Attrs().MTU
	if err := netlink.LinkAdd(ifb); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create ifb %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up ifb %s: %w", name, err)
	}
	if err := netlink.LinkSetAlias(l, aliasPrefix+cni.OwnerTag(n.Name, args.ContainerID, args.IfName)); err != nil {
		return nil, fmt.Errorf("tag ifb %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	return l, nil
}

func delLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Del deletes the ifb; the veth's qdiscs go with the veth.
func Del(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	return delLink(ifbName(n.Name, args.ContainerID, args.IfName))
}

// Check verifies the shapers are in place.
func Check(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	if n.IngressRate == 0 && n.EgressRate == 0 {
		return nil
	}
	host, err := hostPeer(args)
	if err != nil {
		return err
	}
	has := func(l netlink.Link, rateBits uint64) error {
		qs, err := netlink.QdiscList(l)
		if err != nil {
			return fmt.Errorf("qdiscs of %s: %w", l.Attrs().Name, err)
		}
		for _, q := range qs {
			if t, ok := q.(*netlink.Tbf); ok && t.Rate == rateBits/8 {
				return nil
			}
		}
		return fmt.Errorf("no tbf of %d bit/s on %s: %w", rateBits, l.Attrs().Name, cni.ErrCheck)
	}
	if n.IngressRate > 0 {
		if err := has(host, n.IngressRate); err != nil {
			return err
		}
	}
	if n.EgressRate > 0 {
		ifb, err := netlink.LinkByName(ifbName(n.Name, args.ContainerID, args.IfName))
		if err != nil {
			return fmt.Errorf("ifb of %s: %w: %w", args.ContainerID, cni.ErrCheck, err)
		}
		return has(ifb, n.EgressRate)
	}
	return nil
}

// GC deletes the ifbs of attachments no longer valid.
func GC(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	valid := cni.ValidTags(n.Name, n.ValidAttachments)
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var errs []error
	for _, l := range links {
		tag, ok := strings.CutPrefix(l.Attrs().Alias, aliasPrefix)
		if !ok || l.Type() != "ifb" || !valid.Stale(n.Name, tag) {
			continue
		}
		errs = append(errs, delLink(l.Attrs().Name))
	}
	return errors.Join(errs...)
}
