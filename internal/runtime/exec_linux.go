package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/console"
	"github.com/berth-dev/berth/internal/nsexec"
)

// ExecOptions are the exec command's options.
type ExecOptions struct {
	Process       *specs.Process
	ConsoleSocket string
	PidFile       string
	PreserveFDs   int
	Stdio         [3]*os.File
	// attach keeps the terminal's master in the runtime (foreground exec) when no ConsoleSocket is given.
	attach bool
}

// Process is a process the runtime started, which is its child until it exits.
type Process struct {
	Pid   int
	start uint64
	// master is the terminal's master when the runtime started the process attached.
	master *os.File
}

// Exec starts an extra process in a created or running container.
func (c *Container) Exec(ctx context.Context, o ExecOptions) (*Process, error) {
	st := c.Status()
	if st != StatusRunning && st != StatusCreated {
		return nil, wrongState(c, "exec in", st)
	}
	p := o.Process
	if err := validateProcess("process", p); err != nil {
		return nil, err
	}
	if p.Terminal && o.ConsoleSocket == "" && !o.attach {
		return nil, invalid("process.terminal", "a terminal was asked for: pass --console-socket to receive it")
	}
	if err := checkLSM(p); err != nil {
		return nil, err
	}
	initCfg := &initConfig{
		Mode: modeExec, Process: p, Rootfs: c.rec.Rootfs, Bundle: c.rec.Bundle,
		ConsoleFD: -1, FifoDirFD: -1, SeccompFD: -1,
	}
	var extra []*os.File
	consoleIdx, seccompIdx := -1, -1
	var keep *os.File
	if p.Terminal {
		var sock *os.File
		var err error
		if keep, sock, err = consoleConn(o.ConsoleSocket); err != nil {
			return nil, err
		}
		defer keep.Close()
		defer sock.Close()
		consoleIdx = len(extra)
		extra = append(extra, sock)
	}
	if sc := c.rec.Seccomp; sc != nil {
		initCfg.Filter, initCfg.FilterFlags, initCfg.FilterNotify = decodeFilter(sc.Filter), sc.Flags, sc.Notify
		initCfg.SeccompMetadata = sc.Metadata
		if sc.ListenerPath != "" {
			conn, err := dialUnix(sc.ListenerPath)
			if err != nil {
				return nil, fmt.Errorf("linux.seccomp.listenerPath: %w", err)
			}
			defer conn.Close()
			seccompIdx = len(extra)
			extra = append(extra, conn)
		}
	}
	var boot nsexec.Bootstrap
	for _, n := range c.rec.Namespaces {
		boot.Joins = append(boot.Joins, nsexec.Join{Type: n.Type, Path: fmt.Sprintf("/proc/%d/ns/%s", c.rec.Pid, nsexec.ProcName(n.Type))})
	}
	stdio, err := processStdio(o.Stdio, p.Terminal)
	if err != nil {
		return nil, err
	}
	defer closeStdio(stdio, o.Stdio)
	var initial, final []int
	if a := p.ExecCPUAffinity; a != nil {
		initial, _ = parseCPUList(a.Initial)
		final, _ = parseCPUList(a.Final)
	}
	ch, err := spawn(&spawnConfig{
		boot: boot, init: initCfg, stdio: stdio, preserve: o.PreserveFDs, extra: extra, cgroups: c.cgroups(),
		userns:      hasNamespace(c.rec.Namespaces, specs.UserNamespace),
		initialCPUs: initial,
		joinPid:     c.rec.Pid, joinStart: c.rec.PidStart,
		setFDs: func(first int) {
			if consoleIdx >= 0 {
				initCfg.ConsoleFD = first + consoleIdx
			}
			if seccompIdx >= 0 {
				initCfg.SeccompFD = first + seccompIdx
			}
		},
		beforeInit: func(pid int, _ uint64) {
			// The status found above: the process has just joined the namespaces of that init.
			initCfg.ContainerState = c.stateJSON(st)
			if len(final) > 0 {
				_ = setAffinity(pid, final)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	trace("exec-spawned")
	if err := talk(ch.conn, nil, c.rt.log()); err != nil {
		ch.kill()
		return nil, err
	}
	ch.reapFirst()
	// After "ready" the only thing that can come is an error from the last steps; EOF means the
	// program replaced the container half.
	trace("exec-ready")
	body, err := nsexec.ReadFrame(ch.conn)
	trace("exec-eof")
	ch.conn.Close()
	if err == nil {
		m := string(body)
		reap(ch.pid)
		return nil, fmt.Errorf("exec in container %q: %s", c.rec.ID, errorText(m))
	}
	if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("exec in container %q: %w", c.rec.ID, err)
	}
	proc := &Process{Pid: ch.pid, start: ch.start}
	if keep != nil {
		if proc.master, err = console.RecvFile(keep); err != nil {
			return nil, fmt.Errorf("receive the terminal: %w", err)
		}
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, ch.pid); err != nil {
			return nil, err
		}
	}
	return proc, nil
}

// errorText pulls the error out of an error frame's JSON, or returns the frame as it is.
func errorText(frame string) string {
	if m, err := decodeMessage([]byte(frame)); err == nil && m.Error != "" {
		return m.Error
	}
	return frame
}

func setAffinity(pid int, cpus []int) error {
	var set unix.CPUSet
	set.Zero()
	for _, c := range cpus {
		set.Set(c)
	}
	return unix.SchedSetaffinity(pid, &set)
}

// Wait waits for the process to exit and returns its status as a shell would: the exit code, or
// 128 plus the signal that killed it.
func (p *Process) Wait() (int, error) {
	ws, err := reap(p.Pid)
	if err != nil {
		return -1, fmt.Errorf("wait for pid %d: %w", p.Pid, err)
	}
	return exitCode(ws), nil
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
