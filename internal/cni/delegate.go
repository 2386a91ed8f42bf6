package cni

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// Delegation runs a delegated plugin (IPAM) for op ("ADD", "DEL", "CHECK", "GC", "STATUS") the
// way the spec says: found by name in CNI_PATH, given netconf on stdin and the caller's CNI_*
// parameters. When the binary found there is this very executable (bin/cni/host-local is a link
// to berth-cni) and the plugin is in the context's Table, it runs in process instead of being
// exec'd: the same code would run either way, and an exec costs a process start on the hot path.
func Delegate(ctx context.Context, op, plugin string, netconf []byte, args *skel.CmdArgs) (types.Result, error) {
	if f, ok := inProcess(ctx, plugin, args.Path); ok {
		Logger(ctx).Debug("delegating in process", "op", op, "to", plugin)
		a := *args
		a.StdinData = netconf
		switch op {
		case "ADD":
			if f.Add == nil {
				return nil, nil
			}
			return f.Add(ctx, &a)
		case "DEL":
			return nil, call(ctx, f.Del, &a)
		case "CHECK":
			return nil, call(ctx, f.Check, &a)
		case "GC":
			return nil, call(ctx, f.GC, &a)
		case "STATUS":
			return nil, call(ctx, f.Status, &a)
		}
		return nil, fmt.Errorf("delegate %s to %s: unknown operation: %w", op, plugin, ErrEnv)
	}
	Logger(ctx).Debug("delegating by exec", "op", op, "to", plugin)
	return execPlugin(ctx, op, plugin, netconf, args)
}

func call(ctx context.Context, fn func(context.Context, *skel.CmdArgs) error, a *skel.CmdArgs) error {
	if fn == nil {
		return nil
	}
	return fn(ctx, a)
}

func inProcess(ctx context.Context, plugin, cniPath string) (Funcs, bool) {
	t := tableFrom(ctx)
	f, ok := t[plugin]
	if !ok {
		return Funcs{}, false
	}
	if cniPath == "" {
		cniPath = os.Getenv("CNI_PATH")
	}
	path, err := findInPath(plugin, cniPath)
	if err != nil {
		return Funcs{}, false
	}
	var found, self syscall.Stat_t
	if syscall.Stat(path, &found) != nil || syscall.Stat("/proc/self/exe", &self) != nil {
		return Funcs{}, false
	}
	return f, found.Dev == self.Dev && found.Ino == self.Ino
}
