package main

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/signals"
)

func load(g *globals, args []string) (*runtime.Container, error) {
	id, err := oneID(args)
	if err != nil {
		return nil, err
	}
	return g.rt.Load(id)
}

func cmdStart(ctx context.Context, g *globals, args []string) error {
	c, err := load(g, args)
	if err != nil {
		return err
	}
	return c.Start(ctx)
}

func cmdKill(ctx context.Context, g *globals, args []string) error {
	var all bool
	f := newFlags("kill")
	f.boolean(&all, "signal every process in the container", "all", "a")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	sig := unix.SIGTERM
	switch len(rest) {
	case 0:
		return usagef("a container id is required")
	case 1:
	case 2:
		if sig, err = signals.Parse(rest[1]); err != nil {
			return usagef("signal: %v", err)
		}
	default:
		return usagef("unexpected arguments after the signal: %q", rest[2:])
	}
	c, err := g.rt.Load(rest[0])
	if err != nil {
		return err
	}
	return c.Kill(ctx, sig, all)
}

func cmdDelete(ctx context.Context, g *globals, args []string) error {
	var force bool
	f := newFlags("delete")
	f.boolean(&force, "kill the container first if it is not stopped", "force", "f")
	ids, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usagef("a container id is required")
	}
	var errs []error
	for _, id := range ids {
		c, err := g.rt.Load(id)
		if errors.Is(err, runtime.ErrNotExist) && force {
			// A create killed before it wrote its state leaves a bare directory: remove it, and
			// treat "nothing there" as done, as runc does.
			if err := g.rt.ForceRemove(id); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.Delete(ctx, force); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cmdPause(ctx context.Context, g *globals, args []string) error {
	c, err := load(g, args)
	if err != nil {
		return err
	}
	return c.Pause(ctx)
}

func cmdResume(ctx context.Context, g *globals, args []string) error {
	c, err := load(g, args)
	if err != nil {
		return err
	}
	return c.Resume(ctx)
}
