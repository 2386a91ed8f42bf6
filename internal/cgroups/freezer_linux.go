package cgroups

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Freezer states, as v1's freezer.state spells them. FreezerState reports cgroup v2 in the
// same words.
const (
	Frozen   = "FROZEN"
	Thawed   = "THAWED"
	Freezing = "FREEZING"
)

// freezeTimeout bounds how long Freeze waits for every task to stop when ctx has no earlier
// deadline. A task in uninterruptible sleep (D state, e.g. on a hung NFS server) never
// freezes; `pause` should then fail, not hang.
const freezeTimeout = 5 * time.Second

// freezer finds the freezer: v1's freezer hierarchy, else cgroup2's cgroup.freeze (a core
// file, present in every non-root cgroup2 cgroup, also in the hybrid unified hierarchy,
// where the runtime places the container's processes too).
func (m *Manager) freezer() (target, error) {
	if d, ok := m.paths["freezer"]; ok {
		return target{dir: d}, nil
	}
	if d, ok := m.v2Dir(); ok && exists(d, "cgroup.freeze") {
		return target{dir: d, v2: true}, nil
	}
	return target{}, fmt.Errorf("freezer: %w: no freezer hierarchy and no cgroup.freeze", ErrNotAvailable)
}

// Freeze stops every process of the container and returns once they are all stopped. It
// retries while the kernel reports the cgroup as still freezing (on v1, writing FROZEN again
// makes the kernel retry the tasks that were not stopped yet, such as ones that were forking)
// until ctx is done or freezeTimeout passes; then it thaws the cgroup again, so a failed
// pause does not leave a half-frozen container, and returns an error.
func (m *Manager) Freeze(ctx context.Context) error {
	t, err := m.freezer()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	delay := time.Millisecond
	for attempt := 0; ; attempt++ {
		var state string
		if t.v2 {
			if attempt == 0 {
				if err := writeFile(t.dir, "cgroup.freeze", "1"); err != nil {
					return fmt.Errorf("freeze: %w", err)
				}
			}
			state, err = v2FreezerState(t.dir)
		} else {
			if attempt%10 == 0 {
				if err := writeFile(t.dir, "freezer.state", Frozen); err != nil {
					return fmt.Errorf("freeze: %w", err)
				}
			}
			state, err = readFile(t.dir, "freezer.state")
		}
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		if state == Frozen {
			return nil
		}
		var werr error
		if time.Now().Add(delay).After(deadline) {
			werr = fmt.Errorf("still %s after %s", state, freezeTimeout)
		} else {
			werr = sleepCtx(ctx, delay)
		}
		if werr != nil {
			return errors.Join(fmt.Errorf("freeze %s: %w", t.dir, werr), m.Thaw())
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// Thaw resumes the container's processes. It does not wait: thawing cannot get stuck.
func (m *Manager) Thaw() error {
	t, err := m.freezer()
	if err != nil {
		return err
	}
	if t.v2 {
		err = writeFile(t.dir, "cgroup.freeze", "0")
	} else {
		err = writeFile(t.dir, "freezer.state", Thawed)
	}
	if err != nil {
		return fmt.Errorf("thaw: %w", err)
	}
	return nil
}

// FreezerState returns Frozen, Thawed or Freezing (asked to freeze, not all tasks stopped
// yet). On v2 the state is the effective one from cgroup.events, so a cgroup frozen by an
// ancestor reads Frozen, as on v1. Without a freezer it returns an error wrapping
// ErrNotAvailable.
func (m *Manager) FreezerState() (string, error) {
	t, err := m.freezer()
	if err != nil {
		return "", err
	}
	if t.v2 {
		s, err := v2FreezerState(t.dir)
		if err != nil {
			return "", fmt.Errorf("freezer state: %w", err)
		}
		return s, nil
	}
	s, err := readFile(t.dir, "freezer.state")
	if err != nil {
		return "", fmt.Errorf("freezer state: %w", err)
	}
	return s, nil
}

func v2FreezerState(dir string) (string, error) {
	events, err := readFile(dir, "cgroup.events")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(events, "\n") {
		if k, v, _ := strings.Cut(line, " "); k == "frozen" && v == "1" {
			return Frozen, nil
		}
	}
	want, err := readFile(dir, "cgroup.freeze")
	if err != nil {
		return "", err
	}
	if want == "1" {
		return Freezing, nil
	}
	return Thawed, nil
}

// Signal sends sig to every process of the container, including those in cgroups below it.
//
// On cgroup v2, SIGKILL goes through cgroup.kill when the kernel has it (5.14+): the kernel
// kills the whole subtree atomically. Otherwise the cgroup is frozen first so that no process
// can fork a child after the list is read and before the signal arrives, then every listed
// process is signalled, then the cgroup is thawed. If the container was already frozen
// (paused) it stays frozen, except for SIGKILL on v1, where frozen tasks die only once
// thawed. When the cgroup cannot be frozen (no freezer, or a task that will not stop) the
// processes are signalled anyway: delivering a kill matters more than the fork race, which
// the caller's next Signal or Destroy's EBUSY retry catches.
func (m *Manager) Signal(ctx context.Context, sig unix.Signal) error {
	if d, ok := m.v2Dir(); ok && sig == unix.SIGKILL && m.IsV2() && exists(d, "cgroup.kill") {
		if err := writeFile(d, "cgroup.kill", "1"); err != nil {
			return fmt.Errorf("signal %s: %w", unix.SignalName(sig), err)
		}
		return nil
	}
	var thaw bool
	if t, err := m.freezer(); err == nil {
		state, err := m.FreezerState()
		switch {
		case err != nil:
			// Freezer not usable; signal unfrozen.
		case state == Frozen:
			thaw = sig == unix.SIGKILL && !t.v2
		default:
			thaw = m.Freeze(ctx) == nil
		}
	}
	pids, err := m.Pids()
	if err == nil {
		for _, pid := range pids {
			if pid <= 0 {
				continue
			}
			if kerr := unix.Kill(pid, sig); kerr != nil && !errors.Is(kerr, unix.ESRCH) {
				err = errors.Join(err, fmt.Errorf("kill %d: %w", pid, kerr))
			}
		}
	}
	if thaw {
		err = errors.Join(err, m.Thaw())
	}
	if err != nil {
		return fmt.Errorf("signal %s: %w", unix.SignalName(sig), err)
	}
	return nil
}
