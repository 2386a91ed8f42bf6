// Package firewall is the firewall plugin: it accepts forwarded traffic from a pod's addresses
// and established or related traffic to them, in an nftables table of its own (inet, default name
// berth-cni-firewall) with a forward chain and one set of pod addresses per family. An ADD adds
// the pod's addresses to the sets, a DEL or GC removes them, found by their comment (the
// attachment), so no cached result is needed. With ingressPolicy "same-bridge" the pod takes new
// connections only from its own bridge: its address goes in iso4/iso6 and (address . bridge) in
// isosrc4/isosrc6, and three rules drop what is forwarded to it from anywhere else.
//
// nftables evaluates every table's base chains: an accept here does not override a drop in
// another table (iptables-nft's FORWARD policy, say). The table states what pods may do within
// berth's own rules; same-bridge's drops hold everywhere.
package firewall

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/cni/nft"
)

// NetConf is the firewall configuration; names follow the reference plugin.
type NetConf struct {
	cni.Conf
	Backend       string `json:"backend"`
	IngressPolicy string `json:"ingressPolicy,omitempty"`
	NFTable       string `json:"nftTable,omitempty"`
}

// DefaultTable is the table's name unless nftTable says otherwise.
const DefaultTable = "berth-cni-firewall"

// Funcs is the firewall plugin.
func Funcs() cni.Funcs {
	return cni.Funcs{Add: Add, Del: Del, Check: Check, GC: GC}
}

func load(ctx context.Context, args *skel.CmdArgs) (*NetConf, error) {
	n := &NetConf{}
	if err := cni.Decode(ctx, args.StdinData, n); err != nil {
		return nil, err
	}
	switch n.Backend {
	case "", "iptables", "nftables":
		// berth has one backend; "iptables" configurations get the same rules in nftables.
	default:
		return nil, fmt.Errorf("backend %q: berth's firewall is nftables only: %w", n.Backend, cni.ErrUnsupportedField)
	}
	switch n.IngressPolicy {
	case "", "open", "same-bridge":
	case "isolated":
		// pods of one bridge talk over layer 2, which the inet forward hook never sees
		return nil, fmt.Errorf("ingressPolicy %q needs bridge-family rules berth does not have yet: %w", n.IngressPolicy, cni.ErrUnsupportedField)
	default:
		return nil, fmt.Errorf("ingressPolicy %q (want open or same-bridge): %w", n.IngressPolicy, cni.ErrInvalidConfig)
	}
	if n.NFTable == "" {
		n.NFTable = DefaultTable
	}
	return n, nil
}

func table(n *NetConf) *nft.Table {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: n.NFTable}
	pods4 := &nftables.Set{Name: "pods4", KeyType: nftables.TypeIPAddr}
	pods6 := &nftables.Set{Name: "pods6", KeyType: nftables.TypeIP6Addr}
	// same-bridge isolation: the isolated pods' addresses, and (address . its bridge)
	iso4 := &nftables.Set{Name: "iso4", KeyType: nftables.TypeIPAddr}
	iso6 := &nftables.Set{Name: "iso6", KeyType: nftables.TypeIP6Addr}
	isoSrc4 := &nftables.Set{Name: "isosrc4", KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIFName), Concatenation: true}
	isoSrc6 := &nftables.Set{Name: "isosrc6", KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeIFName), Concatenation: true}
	established := binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
	isEstablished := []expr.Any{
		&expr.Ct{Register: nft.Reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: nft.Reg1, DestRegister: nft.Reg1, Len: 4, Mask: established, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: nft.Reg1, Data: make([]byte, 4)},
	}
	var rules [][]expr.Any
	for _, v6 := range []bool{false, true} {
		fam, s, iso, isoSrc := byte(unix.NFPROTO_IPV4), pods4, iso4, isoSrc4
		ifReg := uint32(nft.Reg32x + 1)
		if v6 {
			fam, s, iso, isoSrc = unix.NFPROTO_IPV6, pods6, iso6, isoSrc6
			ifReg = nft.Reg2
		}
		// Isolated pods take traffic from their own bridge, and answers; the rest is dropped.
		isolated := append(nft.NFProto(fam), nft.DstAddr(v6, nft.Reg1), &expr.Lookup{SourceRegister: nft.Reg1, SetName: iso.Name})
		fromOwn := append(append([]expr.Any{}, isolated...),
			nft.DstAddr(v6, nft.Reg1),
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: ifReg},
			&expr.Lookup{SourceRegister: nft.Reg1, SetName: isoSrc.Name},
			nft.Accept())
		answers := append(append(append([]expr.Any{}, isolated...), isEstablished...), nft.Accept())
		drop := append(append([]expr.Any{}, isolated...), nft.Drop())
		in := append(append(append(nft.NFProto(fam),
			nft.DstAddr(v6, nft.Reg1),
			&expr.Lookup{SourceRegister: nft.Reg1, SetName: s.Name}),
			isEstablished...), nft.Accept())
		out := append(nft.NFProto(fam),
			nft.SrcAddr(v6, nft.Reg1),
			&expr.Lookup{SourceRegister: nft.Reg1, SetName: s.Name},
			nft.Accept(),
		)
		rules = append(rules, fromOwn, answers, drop, in, out)
	}
	return &nft.Table{
		Table: t,
		Sets:  []*nftables.Set{pods4, pods6, iso4, iso6, isoSrc4, isoSrc6},
		Chains: []nft.Chain{{
			Chain: &nftables.Chain{Name: "forward", Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
			Rules: rules,
		}},
	}
}

var setNames = []string{"pods4", "pods6", "iso4", "iso6", "isosrc4", "isosrc6"}

func set(t *nft.Table, name string) *nftables.Set {
	for _, s := range t.Sets {
		if s.Name == name {
			return s
		}
	}
	panic("firewall: no set " + name)
}

// bridgeOf is the host bridge among prevResult's interfaces (for same-bridge).
func bridgeOf(prev *types100.Result) (string, error) {
	for _, i := range prev.Interfaces {
		if i.Sandbox != "" || i.Name == "" {
			continue
		}
		if l, err := netlink.LinkByName(i.Name); err == nil && l.Type() == "bridge" {
			return i.Name, nil
		}
	}
	return "", fmt.Errorf("ingressPolicy same-bridge: prevResult lists no host bridge: %w", cni.ErrInvalidConfig)
}

func podAddrs(prev *types100.Result) []netip.Addr {
	var out []netip.Addr
	for _, ipc := range prev.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// Add adds the pod's addresses to the accept sets and passes prevResult through.
func Add(ctx context.Context, args *skel.CmdArgs) (types.Result, error) {
	n, err := load(ctx, args)
	if err != nil {
		return nil, err
	}
	prev, err := n.RequirePrevResult("firewall")
	if err != nil {
		return nil, err
	}
	addrs := podAddrs(prev)
	if len(addrs) == 0 {
		return prev, nil
	}
	var br string
	if n.IngressPolicy == "same-bridge" {
		if br, err = bridgeOf(prev); err != nil {
			return nil, err
		}
	}
	c, err := nft.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	t := table(n)
	if err := nft.Ensure(c, t); err != nil {
		return nil, err
	}
	tag := cni.OwnerTag(n.Name, args.ContainerID, args.IfName)
	for _, a := range addrs {
		fam := "4"
		if a.Is6() {
			fam = "6"
		}
		if err := c.SetAddElements(set(t, "pods"+fam), []nftables.SetElement{{Key: nft.Addr(a), Comment: tag}}); err != nil {
			return nil, fmt.Errorf("firewall element %s: %w", a, err)
		}
		if br == "" {
			continue
		}
		if err := c.SetAddElements(set(t, "iso"+fam), []nftables.SetElement{{Key: nft.Addr(a), Comment: tag}}); err != nil {
			return nil, fmt.Errorf("isolation element %s: %w", a, err)
		}
		if err := c.SetAddElements(set(t, "isosrc"+fam), []nftables.SetElement{{Key: nft.Concat(nft.Addr(a), nft.IfName(br)), Comment: tag}}); err != nil {
			return nil, fmt.Errorf("isolation element %s . %s: %w", a, br, err)
		}
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("nftables firewall for %s: %w", args.ContainerID, err)
	}
	return prev, nil
}

func deleteWhere(ctx context.Context, n *NetConf, match func(string) bool) error {
	c, err := nft.Open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = nft.DeleteOwned(c, table(n).Table, setNames, match)
	return err
}

// Del removes the attachment's addresses, found by their comment.
func Del(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	tag := cni.OwnerTag(n.Name, args.ContainerID, args.IfName)
	return deleteWhere(ctx, n, func(s string) bool { return s == tag })
}

// Check verifies that every address of prevResult is in the accept sets for this attachment.
func Check(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	prev, err := n.PrevResult100()
	if err != nil || prev == nil {
		return err
	}
	c, err := nft.Open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	tag := cni.OwnerTag(n.Name, args.ContainerID, args.IfName)
	have := map[string]bool{}
	for _, name := range []string{"pods4", "pods6"} {
		_, els, err := nft.Owned(c, table(n).Table, name, func(s string) bool { return s == tag })
		if err != nil {
			return err
		}
		for _, e := range els {
			have[string(e.Key)] = true
		}
	}
	for _, a := range podAddrs(prev) {
		if !have[string(nft.Addr(a))] {
			return fmt.Errorf("no firewall accept for %s of %s: %w", a, args.ContainerID, cni.ErrCheck)
		}
	}
	return nil
}

// GC removes the addresses of attachments that are no longer valid.
func GC(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	valid := cni.ValidTags(n.Name, n.ValidAttachments)
	return deleteWhere(ctx, n, func(s string) bool { return valid.Stale(n.Name, s) })
}
