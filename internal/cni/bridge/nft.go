package bridge

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cni/nft"
)

// ipMasq: table inet <nftTable>, chain postrouting (nat, srcnat). Each attachment adds its
// addresses to masq4/masq6 and the pairs (its address . its subnet) and (its address .
// multicast) to the interval sets nomasq4/nomasq6; one rule per family masquerades a packet
// whose source is a pod address and whose destination is outside that pod's subnet. So the
// masquerade is scoped to each pod's own subnet without a chain per container.
//
// macspoofchk: table bridge <nftTable>, chain prerouting (filter, -300). The host end of each
// veth goes in the set ports and (port . pod MAC) in the set macs; one rule drops frames from a
// listed port whose source MAC is not the pod's.

func masqTable(n *NetConf) *nft.Table {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: n.NFTable}
	masq4 := &nftables.Set{Name: "masq4", KeyType: nftables.TypeIPAddr}
	masq6 := &nftables.Set{Name: "masq6", KeyType: nftables.TypeIP6Addr}
	no4 := &nftables.Set{Name: "nomasq4", KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr), Interval: true, Concatenation: true}
	no6 := &nftables.Set{Name: "nomasq6", KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeIP6Addr), Interval: true, Concatenation: true}
	rule := func(v6 bool, src, skip *nftables.Set) []expr.Any {
		fam := byte(unix.NFPROTO_IPV4)
		dreg := uint32(nft.Reg32x + 1)
		if v6 {
			fam, dreg = unix.NFPROTO_IPV6, nft.Reg2
		}
		r := nft.NFProto(fam)
		return append(r,
			nft.SrcAddr(v6, nft.Reg1),
			&expr.Lookup{SourceRegister: nft.Reg1, SetName: src.Name},
			nft.SrcAddr(v6, nft.Reg1),
			nft.DstAddr(v6, dreg),
			&expr.Lookup{SourceRegister: nft.Reg1, SetName: skip.Name, Invert: true},
			&expr.Masq{},
		)
	}
	return &nft.Table{
		Table: t,
		Sets:  []*nftables.Set{masq4, masq6, no4, no6},
		Chains: []nft.Chain{{
			Chain: &nftables.Chain{Name: "postrouting", Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
			Rules: [][]expr.Any{rule(false, masq4, no4), rule(true, masq6, no6)},
		}},
	}
}

func spoofTable(n *NetConf) *nft.Table {
	t := &nftables.Table{Family: nftables.TableFamilyBridge, Name: n.NFTable}
	ports := &nftables.Set{Name: "ports", KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.BigEndian}
	macs := &nftables.Set{Name: "macs", KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeEtherAddr), Concatenation: true}
	prio := nftables.ChainPriority(-300)
	return &nft.Table{
		Table: t,
		Sets:  []*nftables.Set{ports, macs},
		Chains: []nft.Chain{{
			Chain: &nftables.Chain{Name: "prerouting", Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: &prio},
			Rules: [][]expr.Any{{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: nft.Reg1},
				&expr.Lookup{SourceRegister: nft.Reg1, SetName: ports.Name},
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: nft.Reg1},
				&expr.Payload{DestRegister: nft.Reg2, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
				&expr.Lookup{SourceRegister: nft.Reg1, SetName: macs.Name, Invert: true},
				nft.Drop(),
			}},
		}},
	}
}

func setByName(t *nft.Table, name string) *nftables.Set {
	for _, s := range t.Sets {
		if s.Name == name {
			return s
		}
	}
	panic("bridge: no set " + name)
}

// addMasq declares the masquerade table and adds the attachment's elements, in one transaction.
func addMasq(c *nft.Conn, n *NetConf, tag string, ips []*net.IPNet) error {
	t := masqTable(n)
	if err := nft.Ensure(c, t); err != nil {
		return err
	}
	for _, ipn := range ips {
		a, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		ones, _ := ipn.Mask.Size()
		if a.Is4() && len(ipn.Mask) == 16 {
			ones -= 96
		}
		subnet := netip.PrefixFrom(a, ones).Masked()
		src, skip := "masq4", "nomasq4"
		mcast := netip.MustParsePrefix("224.0.0.0/4")
		if a.Is6() {
			src, skip = "masq6", "nomasq6"
			mcast = netip.MustParsePrefix("ff00::/8")
		}
		if err := c.SetAddElements(setByName(t, src), []nftables.SetElement{{Key: nft.Addr(a), Comment: tag}}); err != nil {
			return fmt.Errorf("masquerade element %s: %w", a, err)
		}
		var els []nftables.SetElement
		for _, p := range []netip.Prefix{subnet, mcast} {
			els = append(els, nftables.SetElement{
				Key:     nft.Concat(nft.Addr(a), nft.Addr(p.Addr())),
				KeyEnd:  nft.Concat(nft.Addr(a), nft.Addr(lastOf(p))),
				Comment: tag,
			})
		}
		if err := c.SetAddElements(setByName(t, skip), els); err != nil {
			return fmt.Errorf("masquerade exemptions %s: %w", a, err)
		}
	}
	return nil
}

func addSpoofCheck(c *nft.Conn, n *NetConf, tag, hostIf string, mac net.HardwareAddr) error {
	t := spoofTable(n)
	if err := nft.Ensure(c, t); err != nil {
		return err
	}
	if err := c.SetAddElements(setByName(t, "ports"), []nftables.SetElement{{Key: nft.IfName(hostIf), Comment: tag}}); err != nil {
		return fmt.Errorf("macspoofchk port %s: %w", hostIf, err)
	}
	if err := c.SetAddElements(setByName(t, "macs"), []nftables.SetElement{{Key: nft.Concat(nft.IfName(hostIf), mac), Comment: tag}}); err != nil {
		return fmt.Errorf("macspoofchk mac %s: %w", mac, err)
	}
	return nil
}

// deleteOwned removes the elements matching in both of the network's tables.
func deleteOwned(c *nft.Conn, n *NetConf, match func(string) bool) error {
	if _, err := nft.DeleteOwned(c, masqTable(n).Table, []string{"masq4", "masq6", "nomasq4", "nomasq6"}, match); err != nil {
		return err
	}
	if _, err := nft.DeleteOwned(c, spoofTable(n).Table, []string{"ports", "macs"}, match); err != nil {
		return err
	}
	return nil
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		bit := i * 8
		switch {
		case bit >= p.Bits():
			b[i] = 0xff
		case bit+8 > p.Bits():
			b[i] |= 0xff >> (p.Bits() - bit)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
