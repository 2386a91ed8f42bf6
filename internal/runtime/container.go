package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/specjson"
)

// Runtime is the runtime half, configured by the global command-line options.
type Runtime struct {
	// Root holds one directory of state per container.
	Root string
	// SystemdCgroup selects the systemd cgroup driver.
	SystemdCgroup bool
	// Rootless: the runtime runs unprivileged. Cgroups it may not create are then skipped, unless
	// the configuration asks for resource limits.
	Rootless bool
	// Logger receives warnings (hooks that failed after the point of no return, clamped values).
	Logger *slog.Logger
}

func (r *Runtime) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// Container is one container's state directory, loaded.
type Container struct {
	rt  *Runtime
	dir string
	rec *record
	// master is the terminal's master when the runtime created the container attached.
	master *os.File
	spec   *specs.Spec // decoded from rec.Spec on first use
	// recordPending: the record that ends the create step is written by Start, while the program
	// is exec'd (run only: see Run).
	recordPending bool
}

// ID returns the container's id.
func (c *Container) ID() string { return c.rec.ID }

// DefaultProcess returns the process of the container's configuration, which exec's command-line
// form starts from (nil if it has none).
func (c *Container) DefaultProcess() (*specs.Process, error) {
	if len(c.rec.Process) == 0 {
		return nil, nil
	}
	var p specs.Process
	if err := specjson.UnmarshalProcess(c.rec.Process, &p); err != nil {
		return nil, fmt.Errorf("container %q: stored process: %w", c.rec.ID, err)
	}
	return &p, nil
}

// Spec returns the configuration the container was created with (resources as last updated).
func (c *Container) Spec() (*specs.Spec, error) {
	if c.spec == nil {
		var s specs.Spec
		if err := specjson.Unmarshal(c.rec.Spec, &s); err != nil {
			return nil, fmt.Errorf("container %q: stored config: %w", c.rec.ID, err)
		}
		c.spec = &s
	}
	return c.spec, nil
}

// Pid returns the pid of the container's init, or 0 once it has stopped.
func (c *Container) Pid() int {
	if c.Status() == StatusStopped {
		return 0
	}
	return c.rec.Pid
}

// Load reads a container's state.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.Root, id)
	rec, err := readRecord(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q %w", id, ErrNotExist)
		}
		return nil, err
	}
	return &Container{rt: r, dir: dir, rec: rec}, nil
}

// List loads every container under the root, sorted by id. Directories without a readable state
// (a create that was killed early) are skipped.
func (r *Runtime) List() ([]*Container, error) {
	entries, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.Root, err)
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.ID < out[j].rec.ID })
	return out, nil
}

func (c *Container) cgroups() *cgroups.Manager {
	if len(c.rec.Cgroups) == 0 {
		return nil
	}
	return cgroups.Load(c.rec.Cgroups)
}

// Status derives the container's status from its processes: nobody tells the runtime when they
// change.
func (c *Container) Status() string {
	r := c.rec
	if !alive(r.Pid, r.PidStart) {
		if r.Creating && r.Pid == 0 {
			return StatusCreating
		}
		return StatusStopped
	}
	if r.Creating {
		return StatusCreating
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoName)); err == nil {
		return StatusCreated
	}
	if m := c.cgroups(); m != nil {
		if st, err := m.FreezerState(); err == nil && st == "FROZEN" {
			return StatusPaused
		}
	}
	return StatusRunning
}

// StateInfo is the runtime-spec state plus what runc's state command adds.
type StateInfo struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// State returns the container's state.
func (c *Container) State() *StateInfo { return c.stateAs(c.Status()) }

// stateAs returns the container's state with a status already known (deriving it reads procfs
// and cgroupfs).
func (c *Container) stateAs(st string) *StateInfo {
	pid := c.rec.Pid
	if st == StatusStopped {
		pid = 0
	}
	return &StateInfo{
		State: specs.State{
			Version: specs.Version, ID: c.rec.ID, Status: specs.ContainerState(st), Pid: pid,
			Bundle: c.rec.Bundle, Annotations: c.rec.Annotations,
		},
		Rootfs: c.rec.Rootfs, Created: c.rec.Created, Owner: c.rec.Owner,
	}
}

// stateJSON encodes the state with the given status and the init's pid, or, without a status, as
// State derives it.
func (c *Container) stateJSON(status string) []byte {
	var st *StateInfo
	if status == "" {
		st = c.State()
	} else {
		st = c.stateAs(status)
		st.Pid = c.rec.Pid
	}
	return encodeState(&st.State)
}

func ownerName() string {
	uid := os.Getuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "#" + strconv.Itoa(uid)
}

// signalInit sends sig to the container's init, through a pidfd so that a recycled pid is never hit.
func (c *Container) signalInit(sig unix.Signal) error {
	pidfd, err := unix.PidfdOpen(c.rec.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("container %q: %w: not running", c.rec.ID, ErrWrongState)
		}
		return fmt.Errorf("pidfd_open %d: %w", c.rec.Pid, err)
	}
	defer unix.Close(pidfd)
	// The pidfd now pins the process: check it is the one we started.
	if !alive(c.rec.Pid, c.rec.PidStart) {
		return fmt.Errorf("container %q: %w: not running", c.rec.ID, ErrWrongState)
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %d to pid %d: %w", sig, c.rec.Pid, err)
	}
	return nil
}

// waitGone waits until the init is gone (exited, whether reaped or not).
func (c *Container) waitGone(ctx context.Context, timeout time.Duration) error {
	pidfd, err := unix.PidfdOpen(c.rec.Pid, 0)
	if err != nil {
		return nil // already reaped
	}
	defer unix.Close(pidfd)
	if !alive(c.rec.Pid, c.rec.PidStart) {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("container %q: init %d still alive after %v", c.rec.ID, c.rec.Pid, timeout)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// A pidfd polls readable once its process has exited.
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}
