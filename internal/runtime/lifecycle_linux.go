package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/nsexec"
)

func wrongState(c *Container, op, st string) error {
	return fmt.Errorf("cannot %s container %q: %w: it is %s", op, c.rec.ID, ErrWrongState, st)
}

// Start lets a created container's process run its program. It returns once the program has been
// executed (or has failed to be), after the poststart hooks.
func (c *Container) Start(ctx context.Context) error {
	if st := c.Status(); st != StatusCreated {
		return wrongState(c, "start", st)
	}
	path := filepath.Join(c.dir, fifoName)
	// Non-blocking so that a dead init cannot hang us: poll decides when to read.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return wrongState(c, "start", c.Status())
		}
		return fmt.Errorf("open the start FIFO: %w", err)
	}
	defer unix.Close(fd)
	first, err := c.readFifo(ctx, fd, 1)
	if err != nil {
		return err
	}
	trace("start-fifo-byte")
	if len(first) == 0 {
		return fmt.Errorf("container %q was started by another start", c.rec.ID)
	}
	// From here the container is running: a second start must fail.
	_ = os.Remove(path)
	if c.recordPending {
		// The create step of a run ends here, its record written while the program is exec'd
		// rather than before start (a quarter of a millisecond here).
		if err := writeRecord(c.dir, c.rec); err != nil {
			return err
		}
		c.recordPending = false
	}
	rest, err := c.readFifo(ctx, fd, 64<<10)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("container %q failed to start its process: %s", c.rec.ID, strings.TrimSpace(string(rest)))
	}
	if len(c.rec.Poststart) > 0 {
		for _, err := range runHooksWarn("poststart", c.rec.Poststart, c.stateJSON(StatusRunning)) {
			c.rt.log().Warn(err.Error())
		}
	}
	return nil
}

// readFifo reads up to max bytes: until max are read, or EOF (every writer closed). It gives up if the
// init dies without ever opening the FIFO.
func (c *Container) readFifo(ctx context.Context, fd int, max int) ([]byte, error) {
	var out []byte
	// The FIFO carries one byte, or a short error: a small buffer, grown by append if need be,
	// rather than max bytes to allocate and zero each start.
	buf := make([]byte, min(max, 512))
	for len(out) < max {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && err != unix.EINTR {
			return nil, fmt.Errorf("poll the start FIFO: %w", err)
		}
		if n == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if !alive(c.rec.Pid, c.rec.PidStart) {
				return out, nil
			}
			continue
		}
		if fds[0].Revents&(unix.POLLIN|unix.POLLHUP) == 0 {
			continue
		}
		r, err := unix.Read(fd, buf[:min(len(buf), max-len(out))])
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the start FIFO: %w", err)
		}
		if r == 0 {
			return out, nil
		}
		out = append(out, buf[:r]...)
	}
	return out, nil
}

// Kill sends a signal to the container's init, or with all to every process in its cgroup.
func (c *Container) Kill(ctx context.Context, sig unix.Signal, all bool) error {
	st := c.Status()
	if st == StatusStopped || (st == StatusCreating && c.rec.Pid == 0) {
		return fmt.Errorf("cannot kill container %q: %w: it is not running", c.rec.ID, ErrWrongState)
	}
	if all {
		m := c.cgroups()
		if m == nil {
			return fmt.Errorf("container %q has no cgroup to signal", c.rec.ID)
		}
		return m.Signal(ctx, sig)
	}
	return c.signalInit(sig)
}

// Delete removes a stopped container; with force it kills one that is not stopped first.
func (c *Container) Delete(ctx context.Context, force bool) error {
	st := c.Status()
	if st != StatusStopped {
		if !force {
			return fmt.Errorf("cannot delete container %q: %w: it is %s (stop it first, or use --force)", c.rec.ID, ErrWrongState, st)
		}
		if m := c.cgroups(); m != nil {
			if err := m.Signal(ctx, unix.SIGKILL); err != nil {
				c.rt.log().Warn("kill the container's processes", "error", err)
			}
		}
		if c.rec.Pid > 0 {
			_ = c.signalInit(unix.SIGKILL)
			if err := c.waitGone(ctx, 10*time.Second); err != nil {
				return err
			}
		}
	}
	state := c.stateJSON(StatusStopped)
	trace("delete-begin")
	if err := c.destroy(ctx); err != nil {
		return err
	}
	if len(c.rec.Poststop) > 0 {
		for _, err := range runHooksWarn("poststop", c.rec.Poststop, state) {
			c.rt.log().Warn(err.Error())
		}
	}
	return nil
}

// ForceRemove cleans up a container whose state directory exists without a readable state (a
// create killed before it wrote one). It is not an error if there is nothing. A create started
// early (nsexec/early.c) may have made its cgroups by then, named in a marker: they were new when
// made, so what is in them is the container's init, which is killed before they are removed.
func (r *Runtime) ForceRemove(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	dir := filepath.Join(r.Root, id)
	if b, err := os.ReadFile(filepath.Join(dir, nsexec.EarlyMarker)); err == nil {
		deadline := time.Now().Add(5 * time.Second)
		for _, cg := range nsexec.EarlyCgroups(b) {
			if procs, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(procs)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
						_ = unix.Kill(pid, unix.SIGKILL)
					}
				}
			}
			for {
				err := unix.Rmdir(cg)
				if err == nil || errors.Is(err, unix.ENOENT) {
					break
				}
				if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
					return fmt.Errorf("remove cgroup %s: %w", cg, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	return os.RemoveAll(dir)
}

// Pause freezes every process of the container.
func (c *Container) Pause(ctx context.Context) error {
	if st := c.Status(); st != StatusRunning && st != StatusCreated {
		return wrongState(c, "pause", st)
	}
	m := c.cgroups()
	if m == nil {
		return fmt.Errorf("container %q has no cgroup to freeze", c.rec.ID)
	}
	return m.Freeze(ctx)
}

// Resume thaws a paused container.
func (c *Container) Resume(ctx context.Context) error {
	if st := c.Status(); st != StatusPaused {
		return wrongState(c, "resume", st)
	}
	return c.cgroups().Thaw()
}

// Update applies new resource limits and remembers them.
func (c *Container) Update(ctx context.Context, r *specs.LinuxResources) ([]string, error) {
	if st := c.Status(); st == StatusStopped {
		return nil, wrongState(c, "update", st)
	}
	m := c.cgroups()
	if m == nil {
		return nil, fmt.Errorf("container %q has no cgroup", c.rec.ID)
	}
	spec, err := c.Spec()
	if err != nil {
		return nil, err
	}
	warnings, err := m.Set(r)
	if err != nil {
		return warnings, err
	}
	spec.Linux.Resources = mergeResources(spec.Linux.Resources, r)
	if c.rec.Spec, err = json.Marshal(spec); err != nil {
		return warnings, err
	}
	return warnings, writeRecord(c.dir, c.rec)
}

// mergeResources overlays what an update sets onto what the container had.
func mergeResources(old, upd *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		return upd
	}
	out := *old
	if upd.Memory != nil {
		out.Memory = upd.Memory
	}
	if upd.CPU != nil {
		out.CPU = upd.CPU
	}
	if upd.Pids != nil {
		out.Pids = upd.Pids
	}
	if upd.BlockIO != nil {
		out.BlockIO = upd.BlockIO
	}
	if upd.HugepageLimits != nil {
		out.HugepageLimits = upd.HugepageLimits
	}
	if upd.Network != nil {
		out.Network = upd.Network
	}
	if upd.Rdma != nil {
		out.Rdma = upd.Rdma
	}
	if upd.Unified != nil {
		out.Unified = upd.Unified
	}
	if upd.Devices != nil {
		out.Devices = upd.Devices
	}
	return &out
}

// Processes lists the pids in the container's cgroup.
func (c *Container) Processes() ([]int, error) {
	m := c.cgroups()
	if m == nil {
		return nil, nil
	}
	return m.Pids()
}

// Stats reads the container's cgroup statistics.
func (c *Container) Stats() (*cgroups.Stats, error) {
	m := c.cgroups()
	if m == nil {
		return nil, fmt.Errorf("container %q has no cgroup", c.rec.ID)
	}
	return m.Stats()
}

// OOMKillCount reads how many processes of the container the OOM killer killed.
func (c *Container) OOMKillCount() (uint64, error) {
	m := c.cgroups()
	if m == nil {
		return 0, nil
	}
	return m.OOMKillCount()
}
