package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/cni/nft"
	"github.com/berth-dev/berth/internal/netns"
	"github.com/berth-dev/berth/internal/sysctl"
)

// Funcs is the bridge plugin.
func Funcs() cni.Funcs {
	return cni.Funcs{Add: Add, Del: Del, Check: Check, GC: GC, Status: Status}
}

func load(ctx context.Context, args *skel.CmdArgs) (*NetConf, error) {
	n := &NetConf{}
	if err := cni.Decode(ctx, args.StdinData, n); err != nil {
		return nil, err
	}
	if err := n.validate(args.Args); err != nil {
		return nil, err
	}
	return n, nil
}

// Add attaches the container to the bridge.
func Add(ctx context.Context, args *skel.CmdArgs) (_ types.Result, retErr error) {
	n, err := load(ctx, args)
	if err != nil {
		return nil, err
	}
	log := cni.Logger(ctx)
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
	// The spec: an interface of that name already in the container is an error. Found before
	// IPAM runs, so that a duplicate ADD cannot disturb the first one's allocation.
	if _, err := nh.LinkByName(args.IfName); err == nil {
		return nil, fmt.Errorf("interface %s already exists in %s: %w", args.IfName, args.Netns, cni.ErrExists)
	}

	br, err := ensureBridge(n)
	if err != nil {
		return nil, err
	}

	result := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	if n.IPAM.Type != "" {
		r, err := cni.Delegate(ctx, "ADD", n.IPAM.Type, args.StdinData, args)
		if err != nil {
			return nil, err
		}
		ipamRes, err := types100.NewResultFromResult(r)
		if err != nil {
			return nil, fmt.Errorf("IPAM result: %w: %w", cni.ErrDecode, err)
		}
		result.IPs, result.Routes, result.DNS = ipamRes.IPs, ipamRes.Routes, ipamRes.DNS
		defer func() {
			if retErr != nil {
				if err := delegateDel(ctx, n, args); err != nil {
					log.Warn("releasing addresses after a failed ADD", "err", err)
				}
			}
		}()
	}
	if !n.DNS.IsEmpty() {
		result.DNS = n.DNS
	}

	host, err := createVeth(n, br, ns, args.IfName)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			netlink.LinkDel(host) // takes the container end with it
		}
	}()
	if err := configurePort(n, host); err != nil {
		return nil, err
	}
	cont, err := nh.LinkByName(args.IfName)
	if err != nil {
		return nil, fmt.Errorf("look up %s in %s: %w", args.IfName, args.Netns, err)
	}

	result.Interfaces = []*types100.Interface{
		{Name: br.Name, Mac: br.HardwareAddr.String()},
		{Name: host.Attrs().Name, Mac: host.Attrs().HardwareAddr.String()},
		{Name: args.IfName, Mac: cont.Attrs().HardwareAddr.String(), Sandbox: args.Netns},
	}
	// Gateway addresses, and default routes when the bridge is the default gateway.
	var gws []*net.IPNet
	for _, ipc := range result.IPs {
		ipc.Interface = types100.Int(2)
		if ipc.Gateway == nil {
			continue
		}
		gws = append(gws, &net.IPNet{IP: ipc.Gateway, Mask: ipc.Address.Mask})
		if n.IsDefaultGW {
			dst := &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
			if ipc.Gateway.To4() == nil {
				dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
			}
			if !hasRoute(result.Routes, dst) {
				result.Routes = append(result.Routes, &types.Route{Dst: *dst, GW: ipc.Gateway})
			}
		}
	}
	if err := configureContainer(n, nh, cont, result); err != nil {
		return nil, err
	}
	if n.IsGW {
		gl, err := gatewayLink(n, br)
		if err != nil {
			return nil, err
		}
		v4, v6 := false, false
		for _, gw := range gws {
			if err := ensureGateway(n, gl, gw); err != nil {
				return nil, err
			}
			if gw.IP.To4() != nil {
				v4 = true
			} else {
				v6 = true
			}
		}
		// The bridge as a router needs forwarding on, as with the reference plugin.
		if v4 {
			if err := sysctl.Ensure("net/ipv4/ip_forward", "1"); err != nil {
				return nil, err
			}
		}
		if v6 {
			if err := sysctl.Ensure("net/ipv6/conf/all/forwarding", "1"); err != nil {
				return nil, err
			}
		}
	}

	if n.IPMasq || n.MacSpoofChk {
		tag := cni.OwnerTag(n.Name, args.ContainerID, args.IfName)
		c, err := nft.Open(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if n.IPMasq {
			var ips []*net.IPNet
			for _, ipc := range result.IPs {
				ips = append(ips, &ipc.Address)
			}
			if err := addMasq(c, n, tag, ips); err != nil {
				return nil, err
			}
		}
		if n.MacSpoofChk {
			if err := addSpoofCheck(c, n, tag, host.Attrs().Name, cont.Attrs().HardwareAddr); err != nil {
				return nil, err
			}
		}
		if err := c.Flush(); err != nil {
			return nil, fmt.Errorf("nftables (ipMasq/macspoofchk) for %s: %w", args.ContainerID, err)
		}
		defer func() {
			if retErr != nil {
				deleteOwned(c, n, func(s string) bool { return s == tag })
			}
		}()
	}
	return result, nil
}

func hasRoute(rs []*types.Route, dst *net.IPNet) bool {
	for _, r := range rs {
		if r.Dst.IP.Equal(dst.IP) && r.Dst.Mask.String() == dst.Mask.String() {
			return true
		}
	}
	return false
}

// configureContainer brings the container end up, then adds its addresses and routes: the link
// must be up first, or the kernel refuses routes through gateways on the new subnet.
func configureContainer(n *NetConf, nh *netlink.Handle, cont netlink.Link, res *types100.Result) error {
	if n.DisableContainerInterface {
		return nil
	}
	if err := nh.LinkSetUp(cont); err != nil {
		return fmt.Errorf("set %s up: %w", cont.Attrs().Name, err)
	}
	for _, ipc := range res.IPs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ipc.Address.IP, Mask: ipc.Address.Mask}}
		if ipc.Address.IP.To4() == nil && !n.EnableDad {
			// No duplicate address detection: IPAM handed out this address, and DAD would leave
			// it tentative (unusable) for a second or more after ADD returns.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := nh.AddrAdd(cont, a); err != nil {
			return fmt.Errorf("add %s to %s: %w", a.IPNet, cont.Attrs().Name, err)
		}
	}
	for _, r := range res.Routes {
		gw := r.GW
		if gw == nil {
			// A route without a gateway goes through the gateway of its family.
			for _, ipc := range res.IPs {
				if ipc.Gateway != nil && (ipc.Gateway.To4() == nil) == (r.Dst.IP.To4() == nil) {
					gw = ipc.Gateway
					break
				}
			}
		}
		rt := &netlink.Route{LinkIndex: cont.Attrs().Index, Dst: &net.IPNet{IP: r.Dst.IP, Mask: r.Dst.Mask}, Gw: gw}
		if r.MTU > 0 {
			rt.MTU = r.MTU
		}
		if r.Priority > 0 {
			rt.Priority = r.Priority
		}
		if r.Table != nil {
			rt.Table = *r.Table
		}
		if r.Scope != nil {
			rt.Scope = netlink.Scope(*r.Scope)
		}
		if err := nh.RouteAdd(rt); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add route %s via %v to %s: %w", r.Dst.String(), gw, cont.Attrs().Name, err)
		}
	}
	return nil
}

func delegateDel(ctx context.Context, n *NetConf, args *skel.CmdArgs) error {
	_, err := cni.Delegate(ctx, "DEL", n.IPAM.Type, args.StdinData, args)
	return err
}

// Del releases the addresses, deletes the container's veth (the host end goes with it) and the
// attachment's nftables elements. Everything already gone is success.
func Del(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	var errs []error
	if n.IPAM.Type != "" {
		errs = append(errs, delegateDel(ctx, n, args))
	}
	if args.Netns != "" {
		ns, err := netns.Open(args.Netns)
		switch {
		case errors.Is(err, netns.ErrNotExist):
			// The namespace's path is gone. The namespace itself may live on (another process's
			// mount namespace can still hold it), and the pair with it: the host end that
			// prevResult names goes now rather than when the kernel lets go of the namespace.
			errs = append(errs, delHostEnds(n))
		case err != nil:
			errs = append(errs, err)
		default:
			errs = append(errs, delContainerLink(ns, args.IfName, !n.SyncDel && cni.DetachedHelpers(ctx)))
			ns.Close()
		}
	}
	if n.IPMasq || n.MacSpoofChk {
		errs = append(errs, delNFT(ctx, n, args))
	}
	return errors.Join(errs...)
}

// delHostEnds deletes the host ends of veth pairs that prevResult lists on this network's bridge
// (deleting one end deletes the pair). Without a prevResult, or once they are gone, it does
// nothing.
func delHostEnds(n *NetConf) error {
	prev, err := n.PrevResult100()
	if err != nil || prev == nil {
		return err
	}
	br, err := netlink.LinkByName(n.BrName)
	if err != nil {
		return nil // no bridge, no port on it
	}
	for _, ifc := range prev.Interfaces {
		if ifc.Sandbox != "" || ifc.Name == n.BrName {
			continue
		}
		l, err := netlink.LinkByName(ifc.Name)
		if err != nil || l.Type() != "veth" || l.Attrs().MasterIndex != br.Attrs().Index {
			continue
		}
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("delete %s: %w", ifc.Name, err)
		}
	}
	return nil
}

// delContainerLink detaches the attachment at once and leaves the slow part to a helper.
//
// Unregistering a network device waits for RCU grace periods in the kernel: RTM_DELLINK of a veth
// takes 20-30 ms on an idle machine and more under load, most of a DEL. So DEL takes the container
// end down and renames it out of the way (so that an ADD of the same name right after succeeds),
// takes the host end down and out of the bridge, and starts a detached helper (this binary, see
// Reap) that deletes the pair. When DEL returns the pod has no port on the bridge, no address in
// use and no route; if the helper never runs, the pair dies with the namespace. With reap false
// the pair is deleted before DEL returns.
func delContainerLink(ns *netns.NS, ifname string, reap bool) error {
	nh, err := ns.Netlink()
	if err != nil {
		return err
	}
	defer nh.Close()
	l, err := nh.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s in %s: %w", ifname, ns.Path(), err)
	}
	if reap && detach(nh, l, ns.Path()) == nil {
		return nil
	}
	if err := nh.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s in %s: %w", ifname, ns.Path(), err)
	}
	return nil
}

// ReapEnv names the environment variables that make berth-cni the deleting helper.
const (
	ReapNetnsEnv = "BERTH_CNI_REAP_NETNS"
	ReapLinkEnv  = "BERTH_CNI_REAP_LINK"
)

func detach(nh *netlink.Handle, l netlink.Link, nsPath string) error {
	if err := nh.LinkSetDown(l); err != nil {
		return err
	}
	tmp := "bdel" + randHex(5)
	if err := nh.LinkSetName(l, tmp); err != nil {
		return err
	}
	if v, ok := l.(*netlink.Veth); ok && v.ParentIndex != 0 {
		if peer, err := netlink.LinkByIndex(v.ParentIndex); err == nil {
			netlink.LinkSetNoMaster(peer)
			netlink.LinkSetDown(peer)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// Detached: own session, no descriptor of the runtime's pipes (the runtime waits for stdout
	// to close), not waited for.
	p, err := os.StartProcess(self, []string{"berth-cni-reap"}, &os.ProcAttr{
		Env:   []string{ReapNetnsEnv + "=" + nsPath, ReapLinkEnv + "=" + tmp},
		Files: []*os.File{devnull, devnull, devnull},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		// renamed and detached already; delete it here instead
		nh.LinkDel(l)
		return nil
	}
	return p.Release()
}

// Reap deletes the link a DEL detached (see delContainerLink); berth-cni runs it when started
// with ReapNetnsEnv and ReapLinkEnv set. A namespace or link already gone is success.
func Reap() error {
	ns, err := netns.Open(os.Getenv(ReapNetnsEnv))
	if err != nil {
		return nil
	}
	defer ns.Close()
	nh, err := ns.Netlink()
	if err != nil {
		return err
	}
	defer nh.Close()
	name := os.Getenv(ReapLinkEnv)
	if !strings.HasPrefix(name, "bdel") {
		return fmt.Errorf("reap: %q is not a link detached by DEL", name)
	}
	l, err := nh.LinkByName(name)
	if err != nil {
		return nil
	}
	return nh.LinkDel(l)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func delNFT(ctx context.Context, n *NetConf, args *skel.CmdArgs) error {
	tag := cni.OwnerTag(n.Name, args.ContainerID, args.IfName)
	c, err := nft.Open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return deleteOwned(c, n, func(s string) bool { return s == tag })
}

// Check verifies what ADD made against prevResult: the container interface and its addresses,
// the host end on the bridge, and the IPAM allocation.
func Check(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	prev, err := n.PrevResult100()
	if err != nil {
		return err
	}
	if prev == nil {
		return fmt.Errorf("CHECK needs a prevResult: %w", cni.ErrInvalidConfig)
	}
	if n.IPAM.Type != "" {
		if _, err := cni.Delegate(ctx, "CHECK", n.IPAM.Type, args.StdinData, args); err != nil {
			return err
		}
	}
	ns, err := netns.Open(args.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	nh, err := ns.Netlink()
	if err != nil {
		return err
	}
	defer nh.Close()
	cont, err := nh.LinkByName(args.IfName)
	if err != nil {
		return fmt.Errorf("interface %s in %s: %w: %w", args.IfName, args.Netns, cni.ErrCheck, err)
	}
	veth, ok := cont.(*netlink.Veth)
	if !ok {
		return fmt.Errorf("%s in %s is a %s, not a veth: %w", args.IfName, args.Netns, cont.Type(), cni.ErrCheck)
	}
	var contIf *types100.Interface
	hostNames := map[string]bool{}
	for _, i := range prev.Interfaces {
		switch {
		case i.Sandbox != "" && i.Name == args.IfName:
			contIf = i
		case i.Sandbox == "":
			hostNames[i.Name] = true
		}
	}
	if contIf == nil {
		return fmt.Errorf("prevResult lists no interface %s in a sandbox: %w", args.IfName, cni.ErrCheck)
	}
	if contIf.Mac != "" && contIf.Mac != veth.HardwareAddr.String() {
		return fmt.Errorf("%s has MAC %s, prevResult says %s: %w", args.IfName, veth.HardwareAddr, contIf.Mac, cni.ErrCheck)
	}
	addrs, err := nh.AddrList(cont, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", args.IfName, err)
	}
	for _, ipc := range prev.IPs {
		found := false
		for _, a := range addrs {
			found = found || (a.IP.Equal(ipc.Address.IP) && a.Mask.String() == ipc.Address.Mask.String())
		}
		if !found {
			return fmt.Errorf("%s lacks address %s: %w", args.IfName, ipc.Address.String(), cni.ErrCheck)
		}
	}
	peer, err := netlink.LinkByIndex(veth.ParentIndex)
	if err != nil {
		peerIdx, perr := netlink.VethPeerIndex(veth)
		if perr != nil {
			return fmt.Errorf("host end of %s: %w: %w", args.IfName, cni.ErrCheck, err)
		}
		if peer, err = netlink.LinkByIndex(peerIdx); err != nil {
			return fmt.Errorf("host end of %s: %w: %w", args.IfName, cni.ErrCheck, err)
		}
	}
	if !hostNames[peer.Attrs().Name] {
		return fmt.Errorf("host end of %s is %s, which prevResult does not list: %w", args.IfName, peer.Attrs().Name, cni.ErrCheck)
	}
	br, err := netlink.LinkByName(n.BrName)
	if err != nil {
		return fmt.Errorf("bridge %s: %w: %w", n.BrName, cni.ErrCheck, err)
	}
	if peer.Attrs().MasterIndex != br.Attrs().Index {
		return fmt.Errorf("%s is not a port of %s: %w", peer.Attrs().Name, n.BrName, cni.ErrCheck)
	}
	return nil
}

// GC forwards to IPAM and removes the nftables elements of attachments no longer valid.
func GC(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	var errs []error
	if n.IPAM.Type != "" {
		_, err := cni.Delegate(ctx, "GC", n.IPAM.Type, args.StdinData, args)
		errs = append(errs, err)
	}
	if n.IPMasq || n.MacSpoofChk {
		valid := cni.ValidTags(n.Name, n.ValidAttachments)
		c, err := nft.Open(ctx)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		defer c.Close()
		errs = append(errs, deleteOwned(c, n, func(s string) bool { return valid.Stale(n.Name, s) }))
	}
	return errors.Join(errs...)
}

// Status is IPAM's status.
func Status(ctx context.Context, args *skel.CmdArgs) error {
	n, err := load(ctx, args)
	if err != nil {
		return err
	}
	if n.IPAM.Type == "" {
		return nil
	}
	_, err = cni.Delegate(ctx, "STATUS", n.IPAM.Type, args.StdinData, args)
	return err
}
