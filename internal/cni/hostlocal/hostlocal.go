package hostlocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-dev/berth/internal/cni"
)

// Funcs is the host-local plugin.
func Funcs() cni.Funcs {
	return cni.Funcs{Add: Add, Del: Del, Check: Check, GC: GC, Status: Status}
}

// Add allocates one address per range set for the attachment (CNI_CONTAINERID, CNI_IFNAME). An
// attachment that already holds addresses is refused: a second ADD without DEL is the runtime's
// mistake, and handing out more addresses would leak them.
func Add(ctx context.Context, args *skel.CmdArgs) (types.Result, error) {
	c, _, err := parse(args.StdinData, args.Args)
	if err != nil {
		return nil, err
	}
	s, err := openStore(ctx, c.DataDir, c.Network)
	if err != nil {
		return nil, err
	}
	defer s.close()
	o := owner{id: args.ContainerID, ifname: args.IfName}
	have, err := s.byOwner(o)
	if err != nil {
		return nil, err
	}
	if len(have) > 0 {
		return nil, fmt.Errorf("container %s interface %s already has %v in network %s: %w", o.id, o.ifname, have, c.Network, cni.ErrExists)
	}
	res := &types100.Result{CNIVersion: types100.ImplementedSpecVersion, Routes: c.Routes, DNS: c.DNS}
	var got []netip.Addr
	for i := range c.Sets {
		a, p, err := c.allocate(s, i, o)
		if err != nil {
			for _, g := range got {
				s.release(g)
			}
			return nil, err
		}
		got = append(got, a)
		ipc := &types100.IPConfig{Address: p.ipnet(a)}
		if p.gateway.IsValid() {
			ipc.Gateway = net.IP(p.gateway.AsSlice())
		}
		res.IPs = append(res.IPs, ipc)
	}
	// Every requested address must have found a range set.
	for _, r := range c.Requested {
		found := false
		for _, g := range got {
			found = found || g == r
		}
		if !found {
			for _, g := range got {
				s.release(g)
			}
			return nil, fmt.Errorf("requested IP %s is in none of the configured ranges: %w", r, cni.ErrInvalidConfig)
		}
	}
	cni.Logger(ctx).Debug("allocated", "network", c.Network, "container", o.id, "ifname", o.ifname, "ips", got)
	return res, nil
}

// Del releases the attachment's addresses. Nothing allocated is not an error.
func Del(ctx context.Context, args *skel.CmdArgs) error {
	c, _, err := parse(args.StdinData, args.Args)
	if err != nil {
		return err
	}
	s, err := openStore(ctx, c.DataDir, c.Network)
	if err != nil {
		return err
	}
	defer s.close()
	have, err := s.byOwner(owner{id: args.ContainerID, ifname: args.IfName})
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range have {
		errs = append(errs, s.release(a))
	}
	return errors.Join(errs...)
}

// Check verifies that the attachment still holds its addresses.
func Check(ctx context.Context, args *skel.CmdArgs) error {
	c, _, err := parse(args.StdinData, args.Args)
	if err != nil {
		return err
	}
	s, err := openStore(ctx, c.DataDir, c.Network)
	if err != nil {
		return err
	}
	defer s.close()
	have, err := s.byOwner(owner{id: args.ContainerID, ifname: args.IfName})
	if err != nil {
		return err
	}
	if len(have) != len(c.Sets) {
		return fmt.Errorf("container %s interface %s holds %d addresses in network %s, want %d: %w", args.ContainerID, args.IfName, len(have), c.Network, len(c.Sets), cni.ErrCheck)
	}
	return nil
}

// GC releases every allocation whose attachment is not among the request's valid attachments.
func GC(ctx context.Context, args *skel.CmdArgs) error {
	c, n, err := parse(args.StdinData, args.Args)
	if err != nil {
		return err
	}
	valid := map[owner]bool{}
	for _, a := range n.ValidAttachments {
		valid[owner{id: a.ContainerID, ifname: a.IfName}] = true
	}
	s, err := openStore(ctx, c.DataDir, c.Network)
	if err != nil {
		return err
	}
	defer s.close()
	all, err := s.list()
	if err != nil {
		return err
	}
	var errs []error
	for _, al := range all {
		if valid[al.owner] {
			continue
		}
		cni.Logger(ctx).Info("gc: releasing stale allocation", "network", c.Network, "ip", al.addr, "container", al.owner.id, "ifname", al.owner.ifname)
		errs = append(errs, s.release(al.addr))
	}
	return errors.Join(errs...)
}

// Status fails with code 50 when the data directory is unusable or a range set is exhausted.
func Status(ctx context.Context, args *skel.CmdArgs) error {
	c, _, err := parse(args.StdinData, args.Args)
	if err != nil {
		return err
	}
	s, err := openStore(ctx, c.DataDir, c.Network)
	if err != nil {
		return fmt.Errorf("%w: %w", cni.ErrNotAvailable, err)
	}
	defer s.close()
	if i, full := c.exhausted(s); full {
		return fmt.Errorf("range set %d has no free address: %w", i, cni.ErrNotAvailable)
	}
	return nil
}
