package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/cni/nft"
	"github.com/berth-dev/berth/internal/sysctl"
)

// Mapping is one entry of the portMappings capability.
type Mapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// NetConf is the portmap configuration; names follow the reference plugin.
type NetConf struct {
	cni.Conf
	SNAT          *bool  `json:"snat,omitempty"`
	MarkMasqBit   *int   `json:"markMasqBit"`
	NFTable       string `json:"nftTable,omitempty"`
	RuntimeConfig struct {
		PortMaps []Mapping `json:"portMappings,omitempty"`
	} `json:"runtimeConfig,omitempty"`
}

// DefaultTable is the table's name unless nftTable says otherwise.
const DefaultTable = "berth-cni-portmap"

// Funcs is the portmap plugin.
func Funcs() cni.Funcs {
	return cni.Funcs{Add: Add, Del: Del, Check: Check, GC: GC}
}

func load(ctx context.Context, args *skel.CmdArgs) (*NetConf, error) {
	n := &NetConf{}
	if err := cni.Decode(ctx, args.StdinData, n); err != nil {
		return nil, err
	}
	if n.NFTable == "" {
		n.NFTable = DefaultTable
	}
	if n.MarkMasqBit == nil {
		b := 13
		n.MarkMasqBit = &b
	}
	if *n.MarkMasqBit < 0 || *n.MarkMasqBit > 31 {
		return nil, fmt.Errorf("markMasqBit %d out of range 0-31: %w", *n.MarkMasqBit, cni.ErrInvalidConfig)
	}
	if n.SNAT == nil {
		t := true
		n.SNAT = &t
	}
	return n, nil
}

func (n *NetConf) mark() uint32 { return 1 << uint(*n.MarkMasqBit) }

// entry is one map element to add.
type entry struct {
	set      string
	key, val []byte
}

func protoNum(p string) (byte, error) {
	switch strings.ToLower(p) {
	case "tcp", "":
		return unix.IPPROTO_TCP, nil
	case "udp":
		return unix.IPPROTO_UDP, nil
	case "sctp":
		return unix.IPPROTO_SCTP, nil
	}
	return 0, fmt.Errorf("protocol %q (want tcp, udp or sctp): %w", p, cni.ErrInvalidConfig)
}

// entries turns the mappings into map elements for the pod's addresses.
func entries(maps []Mapping, ips []netip.Addr) ([]entry, error) {
	var out []entry
	for i, m := range maps {
		if m.HostPort < 1 || m.HostPort > 65535 || m.ContainerPort < 1 || m.ContainerPort > 65535 {
			return nil, fmt.Errorf("portMappings[%d]: ports %d->%d out of range 1-65535: %w", i, m.HostPort, m.ContainerPort, cni.ErrInvalidConfig)
		}
		proto, err := protoNum(m.Protocol)
		if err != nil {
			return nil, fmt.Errorf("portMappings[%d]: %w", i, err)
		}
		var hostIP netip.Addr
		if m.HostIP != "" && m.HostIP != "0.0.0.0" && m.HostIP != "::" {
			if hostIP, err = netip.ParseAddr(m.HostIP); err != nil {
				return nil, fmt.Errorf("portMappings[%d]: hostIP %q: %w: %w", i, m.HostIP, cni.ErrInvalidConfig, err)
			}
			hostIP = hostIP.Unmap()
		}
		for _, ip := range ips {
			v6 := ip.Is6()
			if hostIP.IsValid() && hostIP.Is6() != v6 {
				continue
			}
			if m.HostIP == "0.0.0.0" && v6 || m.HostIP == "::" && !v6 {
				continue
			}
			val := nft.Concat(nft.Addr(ip), nft.Port(uint16(m.ContainerPort)))
			fam := "4"
			if v6 {
				fam = "6"
			}
			if hostIP.IsValid() {
				out = append(out, entry{set: "dnat" + fam + "ip", key: nft.Concat(nft.Addr(hostIP), []byte{proto}, nft.Port(uint16(m.HostPort))), val: val})
			} else {
				out = append(out, entry{set: "dnat" + fam + "any", key: nft.Concat([]byte{proto}, nft.Port(uint16(m.HostPort))), val: val})
			}
		}
	}
	return out, nil
}

// podAddrs are the addresses of prevResult's container interface (or all, if none is marked).
func podAddrs(prev *types100.Result) []netip.Addr {
	var out []netip.Addr
	for _, ipc := range prev.IPs {
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(prev.Interfaces) && prev.Interfaces[*ipc.Interface].Sandbox == "" {
			continue
		}
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// Add maps the ports and passes prevResult through.
func Add(ctx context.Context, args *skel.CmdArgs) (types.Result, error) {
	n, err := load(ctx, args)
	if err != nil {
		return nil, err
	}
	prev, err := n.RequirePrevResult("portmap")
	if err != nil {
		return nil, err
	}
	if len(n.RuntimeConfig.PortMaps) == 0 {
		return prev, nil
	}
	ents, err := entries(n.RuntimeConfig.PortMaps, podAddrs(prev))
	if err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		return prev, nil
	}
	if *n.SNAT {
		// Connections from 127.0.0.1 are DNATed to the pod and must be routable out of the
		// bridge: route_localnet on the host-side interfaces of the result.
		for _, i := range prev.Interfaces {
			if i.Sandbox == "" && i.Name != "" && !strings.ContainsAny(i.Name, "/.") {
				if err := sysctl.Ensure("net/ipv4/conf/"+i.Name+"/route_localnet", "1"); err != nil {
					cni.Logger(ctx).Warn("route_localnet", "interface", i.Name, "err", err)
				}
			}
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
	for _, e := range ents {
		if err := c.SetAddElements(set(t, e.set), []nftables.SetElement{{Key: e.key, Val: e.val, Comment: tag}}); err != nil {
			return nil, fmt.Errorf("port mapping element: %w", err)
		}
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("a host port is already mapped to another pod: %w: %w", cni.ErrExists, err)
		}
		return nil, fmt.Errorf("nftables port mappings for %s: %w", args.ContainerID, err)
	}
	return prev, nil
}

// Del removes the attachment's mappings, found by their comment: neither prevResult nor the
// runtimeConfig of the ADD is needed.
func Del(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	tag := cni.OwnerTag(n.Name, args.ContainerID, args.IfName)
	return deleteWhere(ctx, n, func(s string) bool { return s == tag })
}

func deleteWhere(ctx context.Context, n *NetConf, match func(string) bool) error {
	c, err := nft.Open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = nft.DeleteOwned(c, table(n).Table, mapNames, match)
	return err
}

// Check verifies that every mapping of the runtimeConfig is in place for this attachment.
func Check(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	prev, err := n.PrevResult100()
	if err != nil {
		return err
	}
	if prev == nil || len(n.RuntimeConfig.PortMaps) == 0 {
		return nil
	}
	ents, err := entries(n.RuntimeConfig.PortMaps, podAddrs(prev))
	if err != nil {
		return err
	}
	c, err := nft.Open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	tag := cni.OwnerTag(n.Name, args.ContainerID, args.IfName)
	have := map[string]bool{}
	for _, name := range mapNames {
		_, els, err := nft.Owned(c, table(n).Table, name, func(s string) bool { return s == tag })
		if err != nil {
			return err
		}
		for _, e := range els {
			have[name+string(e.Key)+string(e.Val)] = true
		}
	}
	for _, e := range ents {
		if !have[e.set+string(e.key)+string(e.val)] {
			return fmt.Errorf("a port mapping of %s is missing from %s: %w", args.ContainerID, e.set, cni.ErrCheck)
		}
	}
	return nil
}

// GC removes the mappings of attachments that are no longer valid.
func GC(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	valid := cni.ValidTags(n.Name, n.ValidAttachments)
	return deleteWhere(ctx, n, func(s string) bool { return valid.Stale(n.Name, s) })
}

var mapNames = []string{"dnat4any", "dnat4ip", "dnat6any", "dnat6ip"}

func set(t *nft.Table, name string) *nftables.Set {
	for _, s := range t.Sets {
		if s.Name == name {
			return s
		}
	}
	panic("portmap: no set " + name)
}

func table(n *NetConf) *nft.Table {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: n.NFTable}
	proto := nftables.TypeInetProto
	port := nftables.TypeInetService
	v4, v6 := nftables.TypeIPAddr, nftables.TypeIP6Addr
	mk := func(name string, key, val nftables.SetDatatype) *nftables.Set {
		return &nftables.Set{Name: name, IsMap: true, KeyType: key, DataType: val, Concatenation: true}
	}
	sets := []*nftables.Set{
		mk("dnat4any", nftables.MustConcatSetType(proto, port), nftables.MustConcatSetType(v4, port)),
		mk("dnat4ip", nftables.MustConcatSetType(v4, proto, port), nftables.MustConcatSetType(v4, port)),
		mk("dnat6any", nftables.MustConcatSetType(proto, port), nftables.MustConcatSetType(v6, port)),
		mk("dnat6ip", nftables.MustConcatSetType(v6, proto, port), nftables.MustConcatSetType(v6, port)),
	}
	mark := n.mark()
	dnatRules := func() [][]expr.Any {
		var rules [][]expr.Any
		for _, v6 := range []bool{false, true} {
			fam := byte(unix.NFPROTO_IPV4)
			sfx := "4"
			addrLen := uint32(1) // 32-bit registers the address takes
			if v6 {
				fam, sfx, addrLen = unix.NFPROTO_IPV6, "6", 4
			}
			portReg := uint32(nft.Reg32x) + addrLen
			// mapping bound to one host address: key daddr . l4proto . dport
			r := nft.NFProto(fam)
			r = append(r,
				nft.DstAddr(v6, nft.Reg1),
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nft.Reg32x + addrLen},
				&expr.Payload{DestRegister: nft.Reg32x + addrLen + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: nft.Reg1, DestRegister: nft.Reg1, IsDestRegSet: true, SetName: "dnat" + sfx + "ip"},
			)
			r = append(r, setMark(mark)...)
			r = append(r, &expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(fam), RegAddrMin: nft.Reg1, RegProtoMin: portReg, Specified: true})
			rules = append(rules, r)
			// mapping on every host address: the destination must be local
			r = nft.NFProto(fam)
			r = append(r,
				&expr.Fib{Register: nft.Reg1, ResultADDRTYPE: true, FlagDADDR: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: nft.Reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nft.Reg32x},
				&expr.Payload{DestRegister: nft.Reg32x + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: nft.Reg1, DestRegister: nft.Reg1, IsDestRegSet: true, SetName: "dnat" + sfx + "any"},
			)
			r = append(r, setMark(mark)...)
			r = append(r, &expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(fam), RegAddrMin: nft.Reg1, RegProtoMin: portReg, Specified: true})
			rules = append(rules, r)
		}
		return rules
	}
	markReg := uint32(nft.Reg4)
	hairpin := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: markReg},
		&expr.Bitwise{SourceRegister: markReg, DestRegister: markReg, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(mark), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: markReg, Data: make([]byte, 4)},
		// the route to the (translated) destination does not leave through the input interface
		&expr.Fib{Register: nft.Reg1, ResultOIF: true, FlagDADDR: true, FlagIIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: nft.Reg1, Data: make([]byte, 4)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: markReg},
		&expr.Bitwise{SourceRegister: markReg, DestRegister: markReg, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(^mark), Xor: make([]byte, 4)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: markReg},
	}
	masq := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: markReg},
		&expr.Bitwise{SourceRegister: markReg, DestRegister: markReg, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(mark), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: markReg, Data: make([]byte, 4)},
		&expr.Masq{},
	}
	if !*n.SNAT {
		masq = nil
	}
	hairpinPrio := nftables.ChainPriority(-90)
	chains := []nft.Chain{
		{Chain: &nftables.Chain{Name: "prerouting", Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}, Rules: dnatRules()},
		{Chain: &nftables.Chain{Name: "output", Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest}, Rules: dnatRules()},
		{Chain: &nftables.Chain{Name: "hairpin", Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: &hairpinPrio}, Rules: [][]expr.Any{hairpin}},
	}
	if masq != nil {
		chains = append(chains, nft.Chain{Chain: &nftables.Chain{Name: "postrouting", Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}, Rules: [][]expr.Any{masq}})
	}
	return &nft.Table{Table: t, Sets: sets, Chains: chains}
}

// setMark ORs bit into the packet mark, in a register the DNAT's address and port do not use.
func setMark(bit uint32) []expr.Any {
	reg := uint32(nft.Reg4)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(^bit), Xor: binaryutil.NativeEndian.PutUint32(bit)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg},
	}
}
