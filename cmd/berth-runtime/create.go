package main

import (
	"context"

	"github.com/berth-dev/berth/internal/runtime"
)

func createFlags(name string, o *runtime.CreateOptions) *flags {
	f := newFlags(name)
	f.str(&o.Bundle, ".", "bundle directory", "bundle", "b")
	f.str(&o.ConsoleSocket, "", "unix socket that receives the terminal's master", "console-socket")
	f.str(&o.PidFile, "", "file to write the init's pid to", "pid-file")
	f.boolean(&o.NoPivot, "use MS_MOVE and chroot instead of pivot_root", "no-pivot")
	f.boolean(&o.NoNewKeyring, "keep the runtime's session keyring", "no-new-keyring")
	f.integer(&o.PreserveFDs, 0, "pass descriptors 3..3+N-1 to the container", "preserve-fds")
	return f
}

func cmdCreate(ctx context.Context, g *globals, args []string) error {
	var o runtime.CreateOptions
	rest, err := createFlags("create", &o).parse(args)
	if err != nil {
		return err
	}
	if o.ID, err = oneID(rest); err != nil {
		return err
	}
	if o.PreserveFDs < 0 {
		return usagef("--preserve-fds %d: must not be negative", o.PreserveFDs)
	}
	_, err = g.rt.Create(ctx, o)
	return err
}

func cmdRun(ctx context.Context, g *globals, args []string) error {
	var o runtime.CreateOptions
	var detach, keep, noSubreaper bool
	f := createFlags("run", &o)
	f.boolean(&detach, "return once the container has started", "detach", "d")
	f.boolean(&keep, "ignored: the container is deleted when it exits", "keep")
	f.boolean(&noSubreaper, "ignored: the runtime waits for its own child", "no-subreaper")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if o.ID, err = oneID(rest); err != nil {
		return err
	}
	code, err := g.rt.Run(ctx, o, detach)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}
