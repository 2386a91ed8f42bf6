// Package firewall is the firewall plugin: it accepts forwarded traffic from a pod's addresses
// and established or related traffic to them, in an nftables table of its own (inet, default name
// berth-cni-firewall) with a forward chain and one set of pod addresses per family. An ADD adds
// the pod's addresses to the sets, a DEL or GC removes them, found by their comment (the
// attachment), so no cached result is needed. ingressPolicy "same-bridge" is refused (code 2)
// until it is implemented.
//
// nftables evaluates every table's base chains: an accept here does not override a drop in
// another table (iptables-nft's FORWARD policy, say). The table states what pods may do within
// berth's own rules.
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
	established := binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
	var rules [][]expr.Any
	for _, v6 := range []bool{false, true} {
		fam, s := byte(unix.NFPROTO_IPV4), pods4
		if v6 {
			fam, s = unix.NFPROTO_IPV6, pods6
		}
		in := append(nft.NFProto(fam),
			nft.DstAddr(v6, nft.Reg1),
			&expr.Lookup{SourceRegister: nft.Reg1, SetName: s.Name},
			&expr.Ct{Register: nft.Reg1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: nft.Reg1, DestRegister: nft.Reg1, Len: 4, Mask: established, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: nft.Reg1, Data: make([]byte, 4)},
			nft.Accept(),
		)
		out := append(nft.NFProto(fam),
			nft.SrcAddr(v6, nft.Reg1),
			&expr.Lookup{SourceRegister: nft.Reg1, SetName: s.Name},
			nft.Accept(),
		)
		rules = append(rules, in, out)
	}
	return &nft.Table{
		Table: t,
		Sets:  []*nftables.Set{pods4, pods6},
		Chains: []nft.Chain{{
			Chain: &nftables.Chain{Name: "forward", Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
			Rules: rules,
		}},
	}
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
	prev, err := n.PrevResult100()
	if err != nil {
		return nil, err
	}
	if prev == nil {
		return nil, fmt.Errorf("firewall must be chained after an interface plugin (no prevResult): %w", cni.ErrInvalidConfig)
	}
	if n.IngressPolicy == "same-bridge" {
		return nil, fmt.Errorf("ingressPolicy same-bridge is not implemented yet: %w", cni.ErrUnsupportedField)
	}
	addrs := podAddrs(prev)
	if len(addrs) == 0 {
		return prev, nil
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
		s := t.Sets[0]
		if a.Is6() {
			s = t.Sets[1]
		}
		if err := c.SetAddElements(s, []nftables.SetElement{{Key: nft.Addr(a), Comment: tag}}); err != nil {
			return nil, fmt.Errorf("firewall element %s: %w", a, err)
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
	_, err = nft.DeleteOwned(c, table(n).Table, []string{"pods4", "pods6"}, match)
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
