package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/console"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/nsexec"
	"github.com/berth-dev/berth/internal/seccomp"
)

// CreateOptions are the create command's options.
type CreateOptions struct {
	ID     string
	Bundle string
	// PidFile receives the init's pid once the container is created.
	PidFile string
	// ConsoleSocket is a unix socket that receives the terminal's master (process.terminal).
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	// PreserveFDs passes descriptors 3..3+PreserveFDs-1 to the container's program.
	PreserveFDs int
	Stdio       [3]*os.File
	// attach keeps the terminal's master in the runtime (foreground run) when no ConsoleSocket is given.
	attach bool
	// run: Start follows at once in this process, which writes the last record then.
	run bool
}

// Create creates a container: its process waits in the container's namespaces for Start.
func (r *Runtime) Create(ctx context.Context, o CreateOptions) (c *Container, err error) {
	if err := ValidateID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	trace("create-begin")
	spec, raw, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	trace("spec-loaded")
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		return nil, fmt.Errorf("root.path: %w: %w", ErrInvalid, err)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("root.path %s: %w: not a directory", rootfs, ErrInvalid)
	}
	ns, _ := validateNamespaces(spec.Linux)
	if p := spec.Process; p != nil && p.Terminal && o.ConsoleSocket == "" && !o.attach {
		return nil, invalid("process.terminal", "a terminal was asked for: pass --console-socket to receive it (the runtime does not stay attached)")
	}
	if p := spec.Process; p != nil && !p.Terminal && o.ConsoleSocket != "" {
		return nil, invalid("process.terminal", "--console-socket was given but process.terminal is false")
	}
	var prog *seccomp.Program
	if spec.Linux.Seccomp != nil {
		if prog, err = seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return nil, fmt.Errorf("linux.seccomp: %w: %w", ErrInvalid, err)
		}
	}
	if err := checkLSM(spec.Process); err != nil {
		return nil, err
	}
	selinux := selinuxEnabled()
	if spec.Linux.MountLabel != "" && !selinux {
		r.log().Warn("linux.mountLabel is ignored: SELinux is not enabled on this host", "label", spec.Linux.MountLabel)
	}

	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return nil, fmt.Errorf("state root %s: %w", r.Root, err)
	}
	dir := filepath.Join(r.Root, o.ID)
	// 0711: a container's root in a user namespace must be able to reach exec.fifo (and nothing else).
	if err := os.Mkdir(dir, 0o711); err != nil {
		// The constructor makes it when it starts the create early (nsexec/early.c).
		if errors.Is(err, os.ErrExist) && !nsexec.AdoptEarlyStateDir(dir) {
			return nil, fmt.Errorf("container %q %w", o.ID, ErrExist)
		} else if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	rec := &record{
		ID: o.ID, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(), Owner: ownerName(),
		Creating: true, Spec: raw, NoPivot: o.NoPivot, Systemd: r.SystemdCgroup,
	}
	rec.summarize(spec, raw)
	c = &Container{rt: r, dir: dir, rec: rec, spec: spec}
	var ch *child
	defer func() {
		if err == nil {
			return
		}
		if ch != nil {
			ch.kill()
		}
		c.destroy(ctx)
	}()

	cgPath := spec.Linux.CgroupsPath
	if cgPath == "" {
		cgPath = "/berth/" + o.ID
	}
	cg, err := cgroups.New(cgroups.Config{Path: cgPath, Systemd: r.SystemdCgroup})
	if err != nil {
		return c, fmt.Errorf("linux.cgroupsPath %q: %w", cgPath, err)
	}
	rec.Cgroups = cg.Paths()
	// The record is written before anything exists that delete --force would have to find (cgroups,
	// a process in them), so that it finds them after a crash at any point.
	writeFirstRecord := func() error {
		if err := writeRecord(dir, rec); err != nil {
			return err
		}
		// The record now names every cgroup: the constructor's note of the one it made early is
		// no longer needed to find it.
		_ = unix.Unlink(filepath.Join(dir, nsexec.EarlyMarker))
		trace("record-written")
		return nil
	}
	// The cgroups are made while the container process starts (spawn's prepare), except on a
	// pure cgroup v2 host, where the process is forked straight into a cgroup that must then
	// be complete.
	makeCgroups := func() error {
		if err := noteEarlyCgroups(dir, cg.Paths()); err != nil {
			return err
		}
		if err := cg.Create(); err != nil {
			return fmt.Errorf("create cgroups: %w", err)
		}
		if res := effectiveResources(spec); res != nil {
			warnings, err := cg.Set(res)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				r.log().Warn(w)
			}
		}
		return nil
	}
	makeFIFO := func() error {
		if err := unix.Mkfifo(filepath.Join(dir, fifoName), 0o600); err != nil {
			return fmt.Errorf("create the start FIFO: %w", err)
		}
		// The container's root opens the FIFO: in a user namespace that is a different host user.
		if uid, gid := hostRoot(spec); uid != 0 || gid != 0 {
			if err := os.Chown(filepath.Join(dir, fifoName), uid, gid); err != nil {
				return fmt.Errorf("chown the start FIFO: %w", err)
			}
		}
		return nil
	}
	// prepare runs while the container half starts its Go runtime: the cgroups, and the FIFO it
	// opens only once it is ready.
	prepare := func() error {
		if err := makeCgroups(); err != nil {
			return err
		}
		return makeFIFO()
	}
	// afterFork runs once the container process is started, while it enters its namespaces and
	// before it may fork into its cgroup: the record, and on a pure v2 host the cgroup itself. The
	// process has nothing to clean up before then: it exits when the runtime dies.
	var afterFork func() error
	if r.Rootless {
		// Unprivileged, the cgroups may not be ours to make: find out before the process is started
		// with their descriptors, and go without them if nothing is asked of them (as runc does).
		if err := writeFirstRecord(); err != nil {
			return c, err
		}
		if err := makeCgroups(); err != nil {
			if !errors.Is(err, os.ErrPermission) || hasLimits(spec.Linux.Resources) {
				return c, fmt.Errorf("rootless: %w (cgroup limits need a cgroup delegated to this user)", err)
			}
			r.log().Debug("rootless: running without cgroups", "error", err)
			cg, rec.Cgroups = nil, nil
			if err := writeRecord(dir, rec); err != nil {
				return c, err
			}
		}
		prepare = nil
		if err := makeFIFO(); err != nil {
			return c, err
		}
	} else {
		v2 := cg.IsV2()
		if v2 {
			prepare = makeFIFO
		}
		afterFork = func() error {
			if err := writeFirstRecord(); err != nil {
				return err
			}
			if v2 {
				return makeCgroups()
			}
			return nil
		}
	}
	fifoDir, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return c, err
	}
	defer fifoDir.Close()

	initCfg := &initConfig{
		Mode: modeInit, Spec: raw, Rootfs: rootfs, Bundle: bundle, NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring,
		MountNS: ns.has(specs.MountNamespace), MountNSJoined: ns.has(specs.MountNamespace) && !ns.isNew(specs.MountNamespace),
		CgroupNS: ns.isNew(specs.CgroupNamespace),
		Cgroups:  rec.Cgroups, SELinux: selinux, ConsoleFD: -1, FifoDirFD: -1, SeccompFD: -1,
		//lint:ignore SA1019 prestart is deprecated but still part of the runtime-spec, and run
		Hooks: spec.Hooks != nil && (len(spec.Hooks.Prestart) > 0 || len(spec.Hooks.CreateRuntime) > 0 || len(spec.Hooks.CreateContainer) > 0),
	}
	if prog != nil {
		initCfg.Filter, initCfg.FilterFlags, initCfg.FilterNotify = prog.Filter, prog.Flags, prog.Notify
		initCfg.SeccompMetadata = spec.Linux.Seccomp.ListenerMetadata
		rec.Seccomp = &seccompRecord{
			Filter: encodeFilter(prog.Filter), Flags: prog.Flags, Notify: prog.Notify,
			ListenerPath: spec.Linux.Seccomp.ListenerPath, Metadata: spec.Linux.Seccomp.ListenerMetadata,
		}
	}
	extra := []*os.File{fifoDir}
	sources, sourceIdx, err := bindSources(spec, ns, bundle)
	if err != nil {
		return c, err
	}
	defer func() {
		for _, f := range sources {
			f.Close()
		}
	}()
	firstSource := len(extra)
	extra = append(extra, sources...)
	consoleIdx, seccompIdx := -1, -1
	var consoleSock, seccompConn *os.File
	var keep *os.File
	if spec.Process != nil && spec.Process.Terminal {
		if keep, consoleSock, err = consoleConn(o.ConsoleSocket); err != nil {
			return c, err
		}
		defer keep.Close()
		defer consoleSock.Close()
		consoleIdx = len(extra)
		extra = append(extra, consoleSock)
	}
	if prog != nil && spec.Linux.Seccomp.ListenerPath != "" {
		if seccompConn, err = dialUnix(spec.Linux.Seccomp.ListenerPath); err != nil {
			return c, fmt.Errorf("linux.seccomp.listenerPath: %w", err)
		}
		defer seccompConn.Close()
		seccompIdx = len(extra)
		extra = append(extra, seccompConn)
	}
	idmapDests, idmapFiles, err := idmapNamespaces(spec.Mounts)
	if err != nil {
		return c, err
	}
	defer func() {
		for _, f := range idmapFiles {
			f.Close()
		}
	}()
	idmapIdx := len(extra)
	extra = append(extra, idmapFiles...)

	stdio, err := processStdio(o.Stdio, spec.Process != nil && spec.Process.Terminal)
	if err != nil {
		return c, err
	}
	defer closeStdio(stdio, o.Stdio)
	boot, err := bootstrapFor(spec, ns)
	if err != nil {
		return c, err
	}
	ch, err = spawn(&spawnConfig{
		boot: boot, init: initCfg, stdio: stdio, preserve: o.PreserveFDs, extra: extra, cgroups: cg, dir: rootfs,
		prepare: prepare, afterFork: afterFork,
		userns: ns.has(specs.UserNamespace),
		uidMap: spec.Linux.UIDMappings, gidMap: spec.Linux.GIDMappings,
		setFDs: func(first int) {
			initCfg.FifoDirFD = first
			if len(sourceIdx) > 0 {
				initCfg.SourceFDs = map[int]int{}
				for i, mi := range sourceIdx {
					initCfg.SourceFDs[mi] = first + firstSource + i
				}
			}
			if consoleIdx >= 0 {
				initCfg.ConsoleFD = first + consoleIdx
			}
			if seccompIdx >= 0 {
				initCfg.SeccompFD = first + seccompIdx
			}
			if len(idmapDests) > 0 {
				initCfg.IDMapFDs = map[string]int{}
				for i, d := range idmapDests {
					initCfg.IDMapFDs[d] = first + idmapIdx + i
				}
			}
		},
		beforeInit: func(pid int, start uint64) {
			// The state goes with the config, for the hooks the container half runs on its own.
			rec.Pid, rec.PidStart = pid, start
			initCfg.ContainerState = c.stateJSON(StatusCreated)
		},
	})
	if err != nil {
		return c, err
	}
	trace("spawned")
	rec.Pid, rec.PidStart = ch.pid, ch.start
	err = talk(ch.conn, func() ([]byte, error) {
		// The hooks of the create step see "created", as crun reports it and runtime-tools expects:
		// by the time a hook can act, the container's environment exists.
		state := c.stateJSON(StatusCreated)
		if spec.Hooks != nil {
			//lint:ignore SA1019 prestart is deprecated but still part of the runtime-spec, and run
			if err := runHooks("prestart", spec.Hooks.Prestart, state); err != nil {
				return nil, err
			}
			if err := runHooks("createRuntime", spec.Hooks.CreateRuntime, state); err != nil {
				return nil, err
			}
		}
		return state, nil
	}, r.log())
	if err != nil {
		return c, err
	}
	trace("ready")
	ch.reapFirst()
	ch.conn.Close()
	if keep != nil {
		if c.master, err = console.RecvFile(keep); err != nil {
			return c, fmt.Errorf("receive the terminal: %w", err)
		}
	}
	rec.Creating = false
	if o.run {
		c.recordPending = true
	} else if err := writeRecord(dir, rec); err != nil {
		return c, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, ch.pid); err != nil {
			return c, err
		}
	}
	return c, nil
}

// bindSources makes detached clones of the sources of bind mounts for a container with a new user
// namespace, whose root may not be able to reach them by path (and could not bind a descriptor
// from the runtime's mount namespace). It returns the clones and, for each, the mount's index.
func bindSources(spec *specs.Spec, ns namespaces, bundle string) ([]*os.File, []int, error) {
	// An unprivileged runtime (rootless) can neither clone mounts nor reach more than its
	// container's root can: the container half binds by path.
	if !ns.isNew(specs.UserNamespace) || os.Geteuid() != 0 {
		return nil, nil, nil
	}
	var files []*os.File
	var idx []int
	for i, m := range spec.Mounts {
		opts, err := mount.Parse(m.Options)
		if err != nil || !(opts.Bind() || m.Type == "bind") {
			continue
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
		if opts.Recursive() {
			flags |= unix.AT_RECURSIVE
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
		f := os.NewFile(uintptr(fd), src)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, nil, fmt.Errorf("mounts[%d].source: %w", i, err)
		}
		files = append(files, f)
		idx = append(idx, i)
	}
	return files, idx, nil
}

// hasLimits reports whether resources ask for anything (device rules aside).
func hasLimits(r *specs.LinuxResources) bool {
	if r == nil {
		return false
	}
	return r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil || len(r.HugepageLimits) > 0 ||
		r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0
}

// hostRoot returns the host uid and gid that are root in the container (0 without a user namespace).
func hostRoot(s *specs.Spec) (uid, gid int) {
	for _, m := range s.Linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range s.Linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid
}

func hasNamespace(list []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, n := range list {
		if n.Type == t {
			return true
		}
	}
	return false
}

// checkLSM refuses confinement the host cannot apply, at create time rather than at start.
func checkLSM(p *specs.Process) error {
	if p == nil {
		return nil
	}
	if p.ApparmorProfile != "" {
		b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
		if err != nil || len(b) == 0 || b[0] != 'Y' {
			return invalid("process.apparmorProfile", "%q cannot be applied: AppArmor is not enabled on this host", p.ApparmorProfile)
		}
	}
	if p.SelinuxLabel != "" && !selinuxEnabled() {
		return invalid("process.selinuxLabel", "%q cannot be applied: SELinux is not enabled on this host", p.SelinuxLabel)
	}
	return nil
}

// bootstrapFor tells the constructor which namespaces to join and which to create.
func bootstrapFor(spec *specs.Spec, ns namespaces) (nsexec.Bootstrap, error) {
	var b nsexec.Bootstrap
	for _, n := range spec.Linux.Namespaces {
		if n.Path != "" {
			b.Joins = append(b.Joins, nsexec.Join{Type: n.Type, Path: n.Path})
			continue
		}
		if n.Type == specs.CgroupNamespace {
			// Made by the container half once it is in its cgroups, which become the namespace's root.
			continue
		}
		flag, _ := nsexec.CloneFlag(n.Type)
		b.Unshare |= flag
	}
	b.TimeOffsets = spec.Linux.TimeOffsets
	return b, nil
}

// idmapNamespaces makes one user namespace per idmapped mount, in the runtime half where /proc shows
// the helper process.
func idmapNamespaces(mounts []specs.Mount) (dests []string, files []*os.File, err error) {
	for i, m := range mounts {
		opts, err := mount.Parse(m.Options)
		if err != nil || !opts.IDMap {
			continue
		}
		goruntime.LockOSThread()
		f, err := usernsWithMappings(m.UIDMappings, m.GIDMappings)
		goruntime.UnlockOSThread()
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, nil, fmt.Errorf("mounts[%d]: idmap: %w", i, err)
		}
		dests = append(dests, m.Destination)
		files = append(files, f)
	}
	return dests, files, nil
}

// consoleConn returns the socket the container process sends its terminal's master over: a
// connection to the caller's console socket, or, without one, one end of a socket pair whose other
// end (keep) the runtime reads the master from. keep is nil in the first case (Close on a nil
// *os.File is harmless).
func consoleConn(consoleSocket string) (keep, send *os.File, err error) {
	if consoleSocket == "" {
		return socketPair()
	}
	if send, err = dialUnix(consoleSocket); err != nil {
		return nil, nil, fmt.Errorf("--console-socket: %w", err)
	}
	return nil, send, nil
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console-keep"), os.NewFile(uintptr(fds[1]), "console-send"), nil
}

// dialUnix connects a stream socket to the unix socket at path. The connection is only passed on
// (to the container process) or used for one message, so it is a plain descriptor: package net
// would add its poller and, to the binary, its package initialisation, paid at every start.
func dialUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dial unix %s: socket: %w", path, err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dial unix %s: connect: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// writePidFile writes the pid atomically, as containerd and podman read it as soon as we exit.
func writePidFile(path string, pid int) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprint(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// destroy removes what a container left: processes (when it has no pid namespace of its own, its
// processes outlive the init), cgroups and the state directory. It is idempotent.
func (c *Container) destroy(ctx context.Context) error {
	var errs []error
	if !hasNamespace(c.rec.Namespaces, specs.MountNamespace) && c.rec.Pid != 0 {
		// Sharing the runtime's mount namespace, the container's mounts are the host's: they do not
		// go away with its processes. They all hang below the rootfs clone, which goes in one piece.
		if err := unix.Unmount(c.rec.Rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount the rootfs: %w", err))
		}
	}
	// One rmdir per hierarchy first: it fails (EBUSY) while any process or child cgroup is left in
	// the container's cgroup, and otherwise leaves nothing to list, kill or wait for.
	if m := c.cgroups(); m != nil && !m.TryRemove() {
		if pids, _ := m.Pids(); len(pids) > 0 {
			if err := m.Signal(ctx, unix.SIGKILL); err != nil {
				errs = append(errs, err)
			}
		}
		if err := m.Destroy(ctx); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroups: %w", err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := removeStateDir(c.dir); err != nil {
		return fmt.Errorf("remove state: %w", err)
	}
	return nil
}

// noteEarlyCgroups adds to the marker of a create started early (nsexec.EarlyMarker) the cgroup
// directories about to be made that it does not list yet: until the record is written, the marker
// is what delete --force finds them by.
func noteEarlyCgroups(dir string, paths map[string]string) error {
	marker := filepath.Join(dir, nsexec.EarlyMarker)
	b, err := os.ReadFile(marker)
	if err != nil {
		return nil // not started early, or already recorded
	}
	listed := map[string]bool{}
	for _, d := range nsexec.EarlyCgroups(b) {
		listed[d] = true
	}
	var add strings.Builder
	for _, d := range paths {
		if !listed[d] {
			listed[d] = true
			add.WriteString(d + "\n")
		}
	}
	if add.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("note cgroups in %s: %w", marker, err)
	}
	defer f.Close()
	if _, err := f.WriteString(add.String()); err != nil {
		return fmt.Errorf("note cgroups in %s: %w", marker, err)
	}
	return nil
}

// removeStateDir removes a container's state directory: the files the runtime puts there by name,
// then the directory, and only if something else is left, the whole tree (os.RemoveAll lists the
// directory and tries each entry as a file and as a directory).
func removeStateDir(dir string) error {
	for _, name := range []string{stateFile, fifoName, ".state.tmp", nsexec.EarlyMarker} {
		_ = unix.Unlink(filepath.Join(dir, name))
	}
	if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return os.RemoveAll(dir)
}
