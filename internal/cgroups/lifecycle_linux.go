package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Create makes the container's directory in every hierarchy, with missing parents. It is
// idempotent: existing directories are kept and fixed up as below.
//
// Two hierarchies need more than mkdir:
//   - v1 cpuset: a new cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and the
//     kernel refuses to move a task into it (ENOSPC). Every directory on the way down,
//     including intermediate ones such as /berth, gets its parent's values.
//   - cgroup2: a controller's files appear in a cgroup only when every ancestor has enabled
//     it in cgroup.subtree_control. Each ancestor enables what it has; this is best effort,
//     because an ancestor that holds processes cannot enable domain controllers (the
//     kernel's "no internal processes" rule), and Set then reports the missing controller
//     with ErrNotAvailable instead of failing here.
func (m *Manager) Create() error {
	byDir := make(map[string][]string)
	for k, d := range m.paths {
		byDir[d] = append(byDir[d], k)
	}
	var errs []error
	for _, dir := range m.dirs() {
		keys := byDir[dir]
		var err error
		switch {
		case slices.Contains(keys, KeyV2) || slices.Contains(keys, KeyUnified):
			err = createV2(dir)
		case slices.Contains(keys, "cpuset"):
			err = createCpusetV1(dir)
		default:
			err = mkdirAll(dir)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("create cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// mkdirAll is os.MkdirAll that tries the mkdir first: the parent usually exists, and each
// cgroupfs path walk costs (kernfs revalidates every component), where os.MkdirAll stats the
// path and its parent before it makes anything.
func mkdirAll(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EEXIST) {
		// A missing parent, or something already there: os.MkdirAll says which is fine.
		return os.MkdirAll(dir, 0o755)
	}
	return &fs.PathError{Op: "mkdir", Path: dir, Err: err}
}

// createCpusetV1 creates dir in a v1 cpuset hierarchy. It walks up to the nearest ancestor
// whose cpuset.cpus and cpuset.mems are set (the hierarchy root always is), then back down,
// creating each directory and copying the values its parent has into it if it has none.
// The walk does not need to know where the hierarchy is mounted, so a Manager from Load can
// do it too.
func createCpusetV1(dir string) error {
	// The common case first: the parent exists and is configured, and dir is new, so it gets the
	// parent's values (a new cpuset has none).
	if unix.Mkdir(dir, 0o755) == nil {
		parent := filepath.Dir(dir)
		cpus, errC := readFile(parent, "cpuset.cpus")
		mems, errM := readFile(parent, "cpuset.mems")
		if errC == nil && errM == nil && cpus != "" && mems != "" {
			if err := writeFile(dir, "cpuset.cpus", cpus); err != nil {
				return err
			}
			return writeFile(dir, "cpuset.mems", mems)
		}
		// An unconfigured parent: the walk below configures it and dir, which it finds made.
	}
	var todo []string
	for cur := dir; ; cur = filepath.Dir(cur) {
		st, err := os.Stat(cur)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s: %w", cur, unix.ENOTDIR)
			}
			cpus, errC := readFile(cur, "cpuset.cpus")
			mems, errM := readFile(cur, "cpuset.mems")
			if errC != nil || errM != nil {
				// An existing directory without the files is outside the hierarchy:
				// we walked past its root without finding configured values.
				return fmt.Errorf("cpuset: no configured ancestor of %s: %w", dir, errors.Join(errC, errM))
			}
			if cpus != "" && mems != "" {
				break
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if filepath.Dir(cur) == cur {
			return fmt.Errorf("cpuset: no configured ancestor of %s: %w", dir, ErrNotAvailable)
		}
		todo = append(todo, cur)
	}
	for i := len(todo) - 1; i >= 0; i-- {
		d := todo[i]
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		parent := filepath.Dir(d)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := readFile(d, f)
			if err != nil {
				return err
			}
			if cur != "" {
				continue
			}
			v, err := readFile(parent, f)
			if err != nil {
				return err
			}
			if err := writeFile(d, f, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// createV2 creates dir in a cgroup2 hierarchy, enabling in each ancestor, from the hierarchy
// root down, every controller that ancestor has. The root is the topmost directory that
// still has cgroup.controllers (its parent is not cgroupfs), so no mount table is needed.
func createV2(dir string) error {
	// Missing directories, deepest first, and the nearest existing ancestor.
	var missing []string
	cur := dir
	for {
		if _, err := os.Stat(cur); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if filepath.Dir(cur) == cur {
			return fmt.Errorf("%s: no existing ancestor: %w", dir, ErrNotAvailable)
		}
		missing = append(missing, cur)
		cur = filepath.Dir(cur)
	}
	if !exists(cur, "cgroup.controllers") {
		return fmt.Errorf("%s is not in a cgroup2 hierarchy: %w", dir, ErrNotAvailable)
	}
	// Existing ancestors, from the nearest up to the root. dir itself (when it exists) is
	// not asked to delegate: the container's processes live in it.
	var ancestors []string
	for a := cur; exists(a, "cgroup.controllers"); a = filepath.Dir(a) {
		if a != dir {
			ancestors = append(ancestors, a)
		}
		if filepath.Dir(a) == a {
			break
		}
	}
	slices.Reverse(ancestors)
	for _, a := range ancestors {
		enableControllers(a)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if i > 0 {
			enableControllers(missing[i])
		}
	}
	return nil
}

// enableControllers writes "+c" for each controller of dir that dir does not already
// delegate. All at once first (one write, fast path); when that fails, one by one, so that
// one controller the kernel refuses does not keep the others from being enabled. Failures
// are not returned: see Create.
func enableControllers(dir string) {
	have, err := v2Controllers(dir)
	if err != nil || len(have) == 0 {
		return
	}
	on, _ := readFile(dir, "cgroup.subtree_control")
	var want []string
	for _, c := range have {
		if !slices.Contains(strings.Fields(on), c) {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(want, " ")) == nil {
		return
	}
	for _, c := range want {
		_ = writeFile(dir, "cgroup.subtree_control", c)
	}
}

// Join moves pid into the container's cgroup in every hierarchy (cgroup.procs moves the
// whole thread group).
func (m *Manager) Join(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("join cgroup: %w: pid %d", ErrInvalid, pid)
	}
	for _, dir := range m.dirs() {
		if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("join cgroup: pid %d: %w", pid, err)
		}
	}
	return nil
}

// pidsDir picks the hierarchy to list processes from: on v1 any hierarchy holds every
// process of the container, and pids, freezer and memory are the ones a container always
// has; otherwise cgroup2, otherwise whatever exists.
func (m *Manager) pidsDir() (string, error) {
	for _, k := range []string{KeyV2, "pids", "freezer", "memory", KeyUnified} {
		if d, ok := m.paths[k]; ok {
			return d, nil
		}
	}
	if ds := m.dirs(); len(ds) > 0 {
		return ds[0], nil
	}
	return "", fmt.Errorf("cgroup pids: %w: no hierarchy", ErrNotAvailable)
}

// Pids returns every process in the container's cgroup and in the cgroups below it (a
// container may create its own), sorted and without duplicates.
func (m *Manager) Pids() ([]int, error) {
	dir, err := m.pidsDir()
	if err != nil {
		return nil, err
	}
	var pids []int
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A child cgroup removed while we walk is not an error; the top one is.
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("parse %s: %w", filepath.Join(p, "cgroup.procs"), err)
			}
			pids = append(pids, pid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cgroup pids: %w", err)
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// destroyTimeout bounds how long Destroy retries EBUSY when ctx has no earlier deadline:
// long enough for killed processes to be reaped, short enough that `delete` does not hang
// on a cgroup something else keeps busy.
const destroyTimeout = 5 * time.Second

// TryRemove removes the container's directory in every hierarchy with one rmdir each, without
// listing anything or waiting: the common case of a container whose processes are gone and that
// made no cgroups of its own. It reports whether every directory is gone; when it is not (a
// process or a child cgroup is left), Destroy does the full job. It stops at the first directory
// it cannot remove: a process is in every hierarchy, so the ones before held none.
func (m *Manager) TryRemove() bool {
	for _, dir := range m.dirs() {
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			return false
		}
	}
	return true
}

// Destroy removes the container's directory, and every cgroup below it, in every hierarchy,
// deepest first. A directory that is already gone is not an error, so Destroy is idempotent.
// rmdir fails with EBUSY while processes are still exiting; that is retried with backoff
// until ctx is done or destroyTimeout passes. Errors from all hierarchies are returned
// together; the ones that could be removed are removed.
func (m *Manager) Destroy(ctx context.Context) error {
	deadline := time.Now().Add(destroyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var errs []error
	for _, dir := range m.dirs() {
		subs, err := cgroupTree(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("destroy cgroup: %w", err))
			continue
		}
		for _, d := range subs {
			if err := rmdirRetry(ctx, d, deadline); err != nil {
				errs = append(errs, fmt.Errorf("destroy cgroup: %w", err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupTree lists dir and every directory below it, deepest first. A missing dir gives an
// empty list.
func cgroupTree(dir string) ([]string, error) {
	var out []string
	var walk func(d string) error
	walk = func(d string) error {
		ents, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := walk(filepath.Join(d, e.Name())); err != nil {
					return err
				}
			}
		}
		out = append(out, d)
		return nil
	}
	return out, walk(dir)
}

func rmdirRetry(ctx context.Context, dir string, deadline time.Time) error {
	delay := 5 * time.Millisecond
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().Add(delay).After(deadline) {
			return &fs.PathError{Op: "rmdir", Path: dir, Err: err}
		}
		if err := sleepCtx(ctx, delay); err != nil {
			return &fs.PathError{Op: "rmdir", Path: dir, Err: errors.Join(unix.EBUSY, err)}
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
