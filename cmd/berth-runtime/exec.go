package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/specjson"
)

func cmdExec(ctx context.Context, g *globals, args []string) error {
	var (
		o                                   runtime.ExecOptions
		processFile, cwd, user, apparmor    string
		label                               string
		env, caps, gids                     []string
		tty, detach, noNewPrivs, ignorePaus bool
	)
	f := newFlags("exec")
	f.str(&o.ConsoleSocket, "", "unix socket that receives the terminal's master", "console-socket")
	f.str(&o.PidFile, "", "file to write the process's pid to", "pid-file")
	f.integer(&o.PreserveFDs, 0, "pass descriptors 3..3+N-1 to the process", "preserve-fds")
	f.str(&processFile, "", "process.json to run (runtime-spec process)", "process", "p")
	f.str(&cwd, "", "working directory", "cwd")
	f.str(&user, "", "uid[:gid]", "user", "u")
	f.str(&apparmor, "", "AppArmor profile", "apparmor")
	f.str(&label, "", "SELinux label", "process-label")
	f.list(&env, "KEY=value (repeatable)", "env", "e")
	f.list(&caps, "capability to add (repeatable)", "cap", "c")
	f.list(&gids, "additional gid (repeatable)", "additional-gids", "g")
	f.boolean(&tty, "allocate a terminal", "tty", "t")
	f.boolean(&detach, "return once the process has started", "detach", "d")
	f.boolean(&noNewPrivs, "set no_new_privs", "no-new-privs")
	f.boolean(&ignorePaus, "ignored", "ignore-paused")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usagef("a container id is required")
	}
	c, err := g.rt.Load(rest[0])
	if err != nil {
		return err
	}
	var p *specs.Process
	if processFile != "" {
		b, err := os.ReadFile(processFile)
		if err != nil {
			return fmt.Errorf("--process: %w", err)
		}
		p = &specs.Process{}
		if err := specjson.UnmarshalProcess(b, p); err != nil {
			return fmt.Errorf("--process %s: %w: %v", processFile, runtime.ErrInvalid, err)
		}
	} else {
		if len(rest) < 2 {
			return usagef("a command (or --process) is required")
		}
		base, err := c.DefaultProcess()
		if err != nil {
			return err
		}
		if base == nil {
			base = &specs.Process{Cwd: "/"}
		}
		cp := *base
		p = &cp
		p.Args = rest[1:]
		p.Terminal = tty
		p.ConsoleSize = nil
		p.Env = append(append([]string(nil), base.Env...), env...)
		if cwd != "" {
			p.Cwd = cwd
		}
		if user != "" {
			u, g, hasGID := strings.Cut(user, ":")
			uid, err := strconv.ParseUint(u, 10, 32)
			if err != nil {
				return usagef("--user %q: want uid[:gid] as numbers", user)
			}
			p.User.UID = uint32(uid)
			if hasGID {
				gid, err := strconv.ParseUint(g, 10, 32)
				if err != nil {
					return usagef("--user %q: want uid[:gid] as numbers", user)
				}
				p.User.GID = uint32(gid)
			}
		}
		for _, s := range gids {
			gid, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return usagef("--additional-gids %q: not a number", s)
			}
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
		}
		if len(caps) > 0 {
			c := &specs.LinuxCapabilities{}
			if base.Capabilities != nil {
				*c = *base.Capabilities
			}
			c.Bounding = append(append([]string(nil), c.Bounding...), caps...)
			c.Effective = append(append([]string(nil), c.Effective...), caps...)
			c.Permitted = append(append([]string(nil), c.Permitted...), caps...)
			p.Capabilities = c
		}
		if noNewPrivs {
			p.NoNewPrivileges = true
		}
		if apparmor != "" {
			p.ApparmorProfile = apparmor
		}
		if label != "" {
			p.SelinuxLabel = label
		}
	}
	o.Process = p
	if detach {
		_, err := c.Exec(ctx, o)
		return err
	}
	code, err := c.ExecAttached(ctx, o)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}
