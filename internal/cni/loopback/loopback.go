// Package loopback is the loopback plugin: it brings "lo" up in the container's network namespace
// on ADD and down on DEL, and reports lo's addresses. It touches nothing outside the namespace.
package loopback

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/internal/cni"
	"github.com/berth-dev/berth/internal/netns"
)

// Funcs is the loopback plugin.
func Funcs() cni.Funcs {
	return cni.Funcs{Add: Add, Del: Del, Check: Check}
}

type conf struct{ cni.Conf }

func withLo(args *skel.CmdArgs, fn func(h *netlink.Handle, lo netlink.Link) error) error {
	ns, err := netns.Open(args.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := ns.Netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in %s: %w", args.Netns, err)
	}
	return fn(h, lo)
}

// Add sets lo up and reports its addresses.
func Add(ctx context.Context, args *skel.CmdArgs) (types.Result, error) {
	var c conf
	if err := cni.Decode(ctx, args.StdinData, &c); err != nil {
		return nil, err
	}
	res := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	err := withLo(args, func(h *netlink.Handle, lo netlink.Link) error {
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
		addrs, err := h.AddrList(lo, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list lo addresses: %w", err)
		}
		res.Interfaces = []*types100.Interface{{Name: "lo", Mac: "00:00:00:00:00:00", Sandbox: args.Netns}}
		for _, a := range addrs {
			if a.IP.IsLoopback() {
				res.IPs = append(res.IPs, &types100.IPConfig{Interface: types100.Int(0), Address: net.IPNet{IP: a.IP, Mask: a.Mask}})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.PrevResult != nil {
		// Chained after another plugin: pass its result through, as the spec asks.
		return c.PrevResult, nil
	}
	return res, nil
}

// Del sets lo down; a namespace that is gone already has no lo to take down.
func Del(ctx context.Context, args *skel.CmdArgs) error {
	var c conf
	if err := cni.Decode(ctx, args.StdinData, &c); err != nil {
		return err
	}
	err := withLo(args, func(h *netlink.Handle, lo netlink.Link) error {
		return h.LinkSetDown(lo)
	})
	if errors.Is(err, netns.ErrNotExist) {
		return nil
	}
	return err
}

// Check verifies that lo is up.
func Check(ctx context.Context, args *skel.CmdArgs) error {
	var c conf
	if err := cni.Decode(ctx, args.StdinData, &c); err != nil {
		return err
	}
	return withLo(args, func(h *netlink.Handle, lo netlink.Link) error {
		if lo.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("lo is down in %s: %w", args.Netns, cni.ErrCheck)
		}
		return nil
	})
}
