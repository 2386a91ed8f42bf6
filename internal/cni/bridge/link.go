package bridge

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/netns"
)

// ensureBridge returns the bridge, creating it if it does not exist. Concurrent ADDs race to
// create it; the loser sees EEXIST and uses the winner's.
func ensureBridge(n *NetConf) (*netlink.Bridge, error) {
	l, err := netlink.LinkByName(n.BrName)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("look up bridge %s: %w", n.BrName, err)
		}
		vf := n.vlanFiltering()
		br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
		br.Name = n.BrName
		br.MTU = n.MTU
		if vf {
			br.VlanFiltering = &vf
		}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			if vf && errors.Is(err, unix.EOPNOTSUPP) {
				return nil, fmt.Errorf("create bridge %s with vlan filtering (vlan %d, vlanTrunk %v): the kernel has no bridge VLAN filtering: %w: %w", n.BrName, n.Vlan, n.vlans, cni.ErrUnsupportedField, err)
			}
			return nil, fmt.Errorf("create bridge %s: %w", n.BrName, err)
		}
		if l, err = netlink.LinkByName(n.BrName); err != nil {
			return nil, fmt.Errorf("look up bridge %s after creating it: %w", n.BrName, err)
		}
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%s exists and is a %s, not a bridge: %w", n.BrName, l.Type(), cni.ErrInvalidConfig)
	}
	if n.vlanFiltering() && (br.VlanFiltering == nil || !*br.VlanFiltering) {
		if err := netlink.BridgeSetVlanFiltering(br, true); err != nil {
			return nil, fmt.Errorf("enable vlan filtering on %s: %w", n.BrName, err)
		}
	}
	if n.PromiscMode && br.Promisc == 0 {
		if err := netlink.SetPromiscOn(br); err != nil {
			return nil, fmt.Errorf("set %s promiscuous: %w", n.BrName, err)
		}
	}
	if br.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(br); err != nil {
			return nil, fmt.Errorf("set %s up: %w", n.BrName, err)
		}
	}
	return br, nil
}

// hostVethName is a random name: the container ID is not enough (a pod can attach several
// interfaces) and names must be unique on the host.
func hostVethName() string {
	return "veth" + randHex(4)
}

// createVeth creates the pair with the host end attached to br and up, and the container end
// created directly in ns under its final name.
func createVeth(n *NetConf, br *netlink.Bridge, ns *netns.NS, ifname string) (netlink.Link, error) {
	for attempt := 0; ; attempt++ {
		v := &netlink.Veth{
			LinkAttrs:     netlink.NewLinkAttrs(),
			PeerName:      ifname,
			PeerNamespace: netlink.NsFd(ns.Fd()),
		}
		v.Name = hostVethName()
		v.MTU = n.MTU
		if v.MTU == 0 {
			v.MTU = br.MTU
		}
		v.MasterIndex = br.Index
		v.Flags = net.FlagUp
		if n.mac != nil {
			v.PeerHardwareAddr = n.mac
		}
		err := netlink.LinkAdd(v)
		if err == nil {
			host, err := netlink.LinkByName(v.Name)
			if err != nil {
				return nil, fmt.Errorf("look up new veth %s: %w", v.Name, err)
			}
			return host, nil
		}
		if errors.Is(err, unix.EEXIST) && attempt < 3 {
			continue // a host name collision; the container side was checked before IPAM
		}
		return nil, fmt.Errorf("create veth %s/%s: %w", v.Name, ifname, err)
	}
}

// configurePort applies hairpin, isolation and VLANs to the host end.
func configurePort(n *NetConf, host netlink.Link) error {
	if n.HairpinMode {
		if err := netlink.LinkSetHairpin(host, true); err != nil {
			return fmt.Errorf("hairpin on %s: %w", host.Attrs().Name, err)
		}
	}
	if n.PortIsolation {
		if err := netlink.LinkSetIsolated(host, true); err != nil {
			return fmt.Errorf("isolate port %s: %w", host.Attrs().Name, err)
		}
	}
	if !n.vlanFiltering() {
		return nil
	}
	if !n.PreserveDefaultVlan {
		if err := netlink.BridgeVlanDel(host, 1, true, true, false, true); err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("remove default vlan from %s: %w", host.Attrs().Name, err)
		}
	}
	if n.Vlan != 0 {
		if err := netlink.BridgeVlanAdd(host, uint16(n.Vlan), true, true, false, true); err != nil {
			return fmt.Errorf("vlan %d on %s: %w", n.Vlan, host.Attrs().Name, err)
		}
	}
	for _, v := range n.vlans {
		if err := netlink.BridgeVlanAdd(host, uint16(v), false, false, false, true); err != nil {
			return fmt.Errorf("trunk vlan %d on %s: %w", v, host.Attrs().Name, err)
		}
	}
	return nil
}

// gatewayLink is where the gateway addresses go: the bridge, or with a VLAN the bridge's VLAN
// interface "<bridge>.<vlan>", which the bridge itself must carry tagged.
func gatewayLink(n *NetConf, br *netlink.Bridge) (netlink.Link, error) {
	if n.Vlan == 0 {
		return br, nil
	}
	if err := netlink.BridgeVlanAdd(br, uint16(n.Vlan), false, false, true, false); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("vlan %d on bridge %s itself: %w", n.Vlan, br.Name, err)
	}
	name := fmt.Sprintf("%s.%d", br.Name, n.Vlan)
	if len(name) > 15 {
		name = fmt.Sprintf("%.10s.%d", br.Name, n.Vlan)
	}
	if l, err := netlink.LinkByName(name); err == nil {
		return l, nil
	}
	vl := &netlink.Vlan{LinkAttrs: netlink.NewLinkAttrs(), VlanId: n.Vlan}
	vl.Name = name
	vl.ParentIndex = br.Index
	vl.MTU = br.MTU
	if err := netlink.LinkAdd(vl); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create vlan interface %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up vlan interface %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	return l, nil
}

// ensureGateway puts gw/prefix on link unless it is there already. With forceAddress another
// address of the same family in the same subnet is replaced; otherwise a different address of the
// same subnet is an error, because two gateways on one bridge would confuse the pods.
func ensureGateway(n *NetConf, link netlink.Link, gw *net.IPNet) error {
	fam := netlink.FAMILY_V4
	if gw.IP.To4() == nil {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(link, fam)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if a.IPNet.IP.Equal(gw.IP) {
			return nil
		}
		if a.IPNet.Contains(gw.IP) && !a.IP.IsLinkLocalUnicast() {
			if !n.ForceAddress {
				return fmt.Errorf("%s already has %s in the gateway's subnet, not %s (set forceAddress to replace it): %w", link.Attrs().Name, a.IPNet, gw, cni.ErrInvalidConfig)
			}
			if err := netlink.AddrDel(link, &a); err != nil {
				return fmt.Errorf("remove %s from %s: %w", a.IPNet, link.Attrs().Name, err)
			}
		}
	}
	addr := &netlink.Addr{IPNet: gw}
	if fam == netlink.FAMILY_V6 {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add gateway %s to %s: %w", gw, link.Attrs().Name, err)
	}
	return nil
}
