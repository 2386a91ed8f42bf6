package runtime

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/linux"
	"github.com/berth-dev/berth/internal/nsexec"
	"github.com/berth-dev/berth/internal/sealedexe"
)

// spawnConfig describes a container process to start.
type spawnConfig struct {
	boot  nsexec.Bootstrap
	init  *initConfig
	stdio [3]*os.File
	// dir is the working directory the process starts in.
	dir string
	// preserve passes the runtime's descriptors 3..3+preserve-1 through unchanged.
	preserve int
	// extra are passed with the init config; the config refers to them by index in the
	// descriptors that come with it, so spawn fills the *FD fields through the callback.
	extra   []*os.File
	setFDs  func(first int)
	cgroups *cgroups.Manager
	// userns: the process enters a user namespace, whose root may not move itself into a cgroup v2.
	userns bool
	// initialCPUs is the affinity of the process before it joins its cgroups (execCPUAffinity.initial).
	initialCPUs []int
	// afterFork, if set, runs once the container process is forked and before its bootstrap is
	// sent: while it execs the runtime binary. Any cgroup v2 directory to fork into need only exist
	// once afterFork has run.
	afterFork func() error
	// prepare, if set, runs while the container process starts (after the init config is sent,
	// before it is told that its cgroups are ready): the runtime makes the cgroups meanwhile.
	prepare func() error
	// beforeInit is called with the container process's pid before the init config is sent.
	beforeInit func(pid int, start uint64)
	uidMap     []specs.LinuxIDMapping
	gidMap     []specs.LinuxIDMapping
	// joinPid and joinStart identify the init whose namespaces an exec joins.
	joinPid   int
	joinStart uint64
}

// processStdio chooses the container process's stdio: the runtime's own (or the caller's), except
// with a terminal, where the program gets the terminal and the process must not hold the runtime's
// stdio: clients wait for EOF on the runtime's output pipes (go-runc does), which a container
// holding them would never give.
func processStdio(given [3]*os.File, terminal bool) ([3]*os.File, error) {
	var out [3]*os.File
	if terminal {
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return out, err
		}
		return [3]*os.File{null, null, null}, nil
	}
	for i := range out {
		out[i] = given[i]
		if out[i] == nil {
			out[i] = []*os.File{os.Stdin, os.Stdout, os.Stderr}[i]
		}
	}
	return out, nil
}

// closeStdio closes what processStdio opened.
func closeStdio(used, given [3]*os.File) {
	if used[0] != given[0] && used[0] != os.Stdin {
		used[0].Close()
	}
}

// child is a started container process.
type child struct {
	pid   int
	start uint64
	conn  *os.File
	// first, if not 0, is the process that forked this one into its pid namespace, not yet reaped.
	first int
}

// kill stops a child that failed to set up, and reaps it (it is our child: the constructor forks it
// with CLONE_PARENT).
func (ch *child) kill() {
	_ = unix.Kill(ch.pid, unix.SIGKILL)
	reap(ch.pid)
	ch.reapFirst()
	ch.conn.Close()
}

// reapFirst reaps the process that forked the child, if that is still to do.
func (ch *child) reapFirst() {
	if ch.first != 0 {
		reap(ch.first)
		ch.first = 0
	}
}

func reap(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		return ws, err
	}
}

// spawn starts the runtime binary again, sealed, lets the constructor place it in its namespaces,
// puts it in its cgroups first, and sends it the init config.
func spawn(cfg *spawnConfig) (ch *child, err error) {
	trace("spawn-begin")
	// The constructor has usually started the process already (nsexec.c, "prespawn"); otherwise it
	// is started below with these descriptors, the sync socket at syncFD.
	pre := nsexec.TakePrespawned()
	if pre != nil && pre.Broken {
		pre.Discard()
		pre = nil
	}
	var conn, childEnd *os.File
	if pre != nil {
		conn = pre.Conn
	} else {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("socketpair: %w", err)
		}
		conn, childEnd = os.NewFile(uintptr(fds[0]), "sync"), os.NewFile(uintptr(fds[1]), "sync-child")
		defer childEnd.Close()
	}
	// abandon gives up before the process got its bootstrap.
	abandon := func() {
		if pre != nil {
			pre.Discard()
		} else {
			conn.Close()
		}
	}

	files := []*os.File{cfg.stdio[0], cfg.stdio[1], cfg.stdio[2]}
	for i := 0; i < cfg.preserve; i++ {
		files = append(files, os.NewFile(uintptr(3+i), "preserved"))
	}
	syncFD := len(files)
	files = append(files, childEnd)
	// Where the cgroups are joined, and by whom, is chosen for speed and for tight pids limits:
	//  - v1 hierarchies: the container half moves its own exec'ing thread in, by writing "0" to each
	//    tasks file just before it reports ready. A thread moving itself skips the global lock whose
	//    RCU grace period makes every cgroup.procs write cost milliseconds here, and the Go runtime's
	//    other threads never count against the container's pids.max (they end at execve).
	//  - the v2 hierarchy: the constructor forks straight into it (clone3 CLONE_INTO_CGROUP).
	//  - in a user namespace, whose root may not write the host's cgroup files: the runtime writes
	//    the pid into every cgroup.procs, while the container half starts.
	// extras go to the container half with its init config (SCM_RIGHTS); the config names them by
	// index: the tasks files' directories first, then cfg.extra.
	var extras []*os.File
	var rest []string
	var v2Dir string
	cfg.init.CgroupTasks = nil
	if cfg.cgroups != nil {
		seen := map[string]bool{}
		for key, dir := range cfg.cgroups.Paths() {
			if seen[dir] {
				continue // co-mounted controllers share a directory
			}
			seen[dir] = true
			switch {
			case cfg.userns:
				rest = append(rest, dir)
			case key != "unified" && key != "":
				// The directory may not exist yet (it is made while this process starts), and the
				// container half writes its tasks file after pivot_root, where the host's cgroupfs
				// is out of reach: it gets a descriptor of the nearest existing ancestor and opens
				// the rest of the path from there.
				f, rel, err := openAncestor(dir)
				if err != nil {
					abandon()
					return nil, err
				}
				defer f.Close()
				cfg.init.CgroupTasks = append(cfg.init.CgroupTasks, cgroupTask{FD: len(extras), Path: filepath.Join(rel, "tasks")})
				extras = append(extras, f)
			default:
				// The constructor forks straight into it: sendBootstrap makes it (after afterFork)
				// and sends it with the bootstrap's second frame.
				v2Dir = dir
			}
		}
		sort.Strings(rest)
	}
	if cfg.setFDs != nil {
		cfg.setFDs(len(extras))
	}
	extras = append(extras, cfg.extra...)
	if len(extras) > nsexec.MaxFrameFDs {
		abandon()
		return nil, fmt.Errorf("%d descriptors to pass to the container process (bind mount sources, cgroups, sockets): at most %d can be", len(extras), nsexec.MaxFrameFDs)
	}
	cfg.init.PreserveFDs = cfg.preserve

	bootNS, err := cfg.boot.Encode()
	if err != nil {
		abandon()
		return nil, err
	}
	// The process may have entered the container already (nsexec/early.c): if the constructor
	// sent what is about to be sent, only its pid is left to read.
	early := false
	if pre != nil && pre.Early != nil {
		e := pre.Early
		same := e.NS == string(bootNS) && e.Cgroup == v2Dir && e.Preserve == cfg.preserve &&
			e.Dir == cfg.dir && len(cfg.initialCPUs) == 0 && !cfg.userns
		if e.Create {
			// The stdio sent is the runtime's own, which is what processStdio chose unless
			// a terminal was asked for (the constructor does not start those).
			early = same && cfg.joinPid == 0
		} else {
			early = same && e.Pid == cfg.joinPid && e.PidStart == cfg.joinStart && cfg.joinPid > 0 &&
				cfg.afterFork == nil
		}
		if !early {
			pre.Discard()
			return spawn(cfg)
		}
	}
	var first int
	if early {
		trace("joined-early")
		first = pre.Pid
	} else if pre != nil {
		if err := pre.Send(files, syncFD, cfg.dir); err != nil {
			// Too many descriptors, or the process is gone: start one here instead.
			pre.Discard()
			return spawn(cfg)
		}
		first = pre.Pid
	} else if first, err = startContainerProcess(files, syncFD, cfg.dir); err != nil {
		conn.Close()
		return nil, err
	}
	trace("started-process")
	fail := func(e error) (*child, error) {
		_ = unix.Kill(first, unix.SIGKILL)
		reap(first)
		conn.Close()
		return nil, e
	}
	if childEnd != nil {
		childEnd.Close()
	}
	if !early {
		if err := sendBootstrap(cfg, conn, first, bootNS, v2Dir); err != nil {
			return fail(err)
		}
	}
	pid := 0
	for pid == 0 {
		body, err := nsexec.ReadFrame(conn)
		if err != nil {
			ws, _ := reap(first)
			conn.Close()
			return nil, fmt.Errorf("container process exited during namespace setup (%s): %w", describeWait(ws), err)
		}
		m, err := decodeMessage(body)
		if err != nil {
			return fail(fmt.Errorf("decode bootstrap reply: %w", err))
		}
		switch m.Type {
		case msgUsermap:
			if err := writeIDMaps(m.Pid, cfg.uidMap, cfg.gidMap); err != nil {
				return fail(err)
			}
			if err := writeMessage(conn, message{Type: msgAck}); err != nil {
				return fail(err)
			}
		case msgPid:
			pid = m.Pid
		case msgError:
			ws, _ := reap(first)
			conn.Close()
			_ = ws
			return nil, errors.New(m.Error)
		default:
			return fail(fmt.Errorf("unexpected %q during namespace setup", m.Type))
		}
	}
	trace("got-pid")
	ch = &child{pid: pid, conn: conn}
	if pid != first {
		// The constructor forked into the new pid (or time) namespace, and its first process exits
		// once it has sent the pid (it has no other way to end): it is reaped later, its exit
		// taking longer than anything here needs to wait.
		ch.first = first
	}
	if _, start, ok := procStat(pid); ok {
		ch.start = start
	}
	if cfg.beforeInit != nil {
		cfg.beforeInit(ch.pid, ch.start)
	}
	if err := nsexec.WriteFrameFDs(conn, encodeInitConfig(cfg.init), extras); err != nil {
		ch.kill()
		return nil, fmt.Errorf("send init config: %w", err)
	}
	// Started early, the process is already in its cgroup v2 directory, and the constructor's
	// marker lists the cgroups (prepare adds any it makes that are not): the record can wait until
	// the process has what it waits for. (Never in a user namespace: rest is then empty.)
	recordLater := early && cfg.afterFork != nil
	if cfg.prepare != nil {
		prepare := yielding
		if early {
			// The container half is well into its start already, and soon waits for this.
			prepare = func(f func() error) error { return f() }
		}
		if err := prepare(cfg.prepare); err != nil {
			ch.kill()
			return nil, err
		}
	}
	// Moving another process into a cgroup waits for an RCU grace period (milliseconds here). What
	// is left for the runtime to join is done while the container half starts its Go runtime and
	// builds the root filesystem; the container half waits for this "joined" frame before anything
	// that depends on its cgroups (cgroup mounts, hooks, the program itself).
	if len(rest) == 0 {
		// Nothing left to join: say so at once, without a goroutine (on a VM whose idle CPUs halt,
		// handing work to another thread costs a wake-up).
		if err := writeMessage(conn, message{Type: msgJoined}); err != nil {
			ch.kill()
			return nil, err
		}
		if recordLater {
			if err := cfg.afterFork(); err != nil {
				ch.kill()
				return nil, err
			}
		}
		return ch, nil
	}
	go func() {
		m := message{Type: msgJoined}
		for _, dir := range rest {
			if err := linux.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid))); err != nil {
				m = message{Type: msgError, Error: fmt.Sprintf("join cgroup %s: %v", dir, err)}
				break
			}
		}
		trace("joined-cgroups")
		_ = writeMessage(conn, m)
	}()
	return ch, nil
}

// sendBootstrap sends the process (started, pid first) its namespaces, then, once the container is
// recorded and its cgroup v2 directory exists, the cgroup to fork into: it enters the namespaces
// meanwhile. Nothing it does before the second frame outlives it.
func sendBootstrap(cfg *spawnConfig, conn *os.File, first int, bootNS []byte, v2Dir string) error {
	if err := nsexec.WriteFrame(conn, bootNS); err != nil {
		return fmt.Errorf("send bootstrap: %w", err)
	}
	if cfg.afterFork != nil {
		if err := cfg.afterFork(); err != nil {
			return err
		}
	}
	if v2Dir != "" {
		// Usually only the last component is missing (one cgroupfs path walk, not three).
		if err := unix.Mkdir(v2Dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			if err := os.MkdirAll(v2Dir, 0o755); err != nil {
				return fmt.Errorf("create cgroup %s: %w", v2Dir, err)
			}
		}
	}
	if len(cfg.initialCPUs) > 0 {
		if err := setAffinity(first, cfg.initialCPUs); err != nil {
			return fmt.Errorf("process.execCPUAffinity.initial: %w", err)
		}
	}
	var dir *os.File
	if v2Dir != "" {
		d, err := os.OpenFile(v2Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open cgroup %s: %w", v2Dir, err)
		}
		defer d.Close()
		dir = d
	}
	if err := nsexec.WriteCgroupFrame(conn, dir); err != nil {
		return fmt.Errorf("send bootstrap: %w", err)
	}
	return nil
}

// yielding runs f on a thread at the lowest priority (nice 19): the container half starts its Go
// runtime meanwhile (on these 2-CPU machines the longest step of a start), and f's work is needed
// only later. Not SCHED_IDLE, under which f could wait for as long as the CPUs are busy.
func yielding(f func() error) error {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	tid := unix.Gettid()
	old, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil || unix.Setpriority(unix.PRIO_PROCESS, tid, 19) != nil {
		return f()
	}
	// getpriority(2) returns 20 - nice.
	defer func() { _ = unix.Setpriority(unix.PRIO_PROCESS, tid, 20-old) }()
	return f()
}

// startContainerProcess starts the runtime binary again, sealed, as the container process, with
// files as its descriptors and the sync socket at syncFD.
func startContainerProcess(files []*os.File, syncFD int, dir string) (int, error) {
	exe, err := sealedexe.Open()
	if err != nil {
		return 0, err
	}
	defer exe.Close()
	// One P in the container process: it works sequentially, and its execve must stop every other
	// thread the Go runtime started (waking each of them, a VM exit apiece on idle CPUs).
	env := []string{nsexec.EnvSyncFD + "=" + strconv.Itoa(syncFD), "GOMAXPROCS=1"}
	if traceOn {
		env = append(env, "BERTH_TRACE=1")
	}
	// syscall.ForkExec rather than os.StartProcess: the latter probes for pidfd support on first use
	// with a throwaway clone, and the runtime tracks the child by pid and start time anyway.
	childFDs := make([]uintptr, len(files))
	for i, f := range files {
		childFDs[i] = f.Fd()
	}
	var pid int
	err = nsexec.WithHostTimerSlack(func() (err error) {
		pid, err = syscall.ForkExec(exe.Path(), []string{"berth-runtime", "init"}, &syscall.ProcAttr{
			Env:   env,
			Dir:   dir,
			Files: childFDs,
		})
		return err
	})
	goruntime.KeepAlive(files)
	if err != nil {
		return 0, fmt.Errorf("start the container process: %w", err)
	}
	return pid, nil
}

// openAncestor opens (O_PATH) an existing ancestor of the cgroup directory dir and returns the rest
// of the path below it. It tries dir's parent first, which usually exists (the container's
// cgroup is made while its process starts): each cgroupfs path walk costs, kernfs revalidating
// every component.
func openAncestor(dir string) (*os.File, string, error) {
	anc, rel := filepath.Dir(dir), filepath.Base(dir)
	for {
		f, err := os.OpenFile(anc, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			return f, rel, nil
		}
		if !errors.Is(err, os.ErrNotExist) || anc == "/" {
			return nil, "", fmt.Errorf("open cgroup %s: %w", anc, err)
		}
		rel = filepath.Join(filepath.Base(anc), rel)
		anc = filepath.Dir(anc)
	}
}

func describeWait(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %d", ws.Signal())
	}
	return "unknown status"
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	render := func(ms []specs.LinuxIDMapping) []byte {
		var sb strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&sb, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		return []byte(sb.String())
	}
	if os.Geteuid() != 0 {
		// An unprivileged writer may map its own gid only once setgroups is denied.
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0)
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), render(uids), 0); err != nil {
		return fmt.Errorf("linux.uidMappings: write uid_map: %w", err)
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), render(gids), 0); err != nil {
		return fmt.Errorf("linux.gidMappings: write gid_map: %w", err)
	}
	return nil
}

// talk reads the container half's messages until it reports ready, answering hook requests with
// onHooks and passing warnings to warn.
func talk(conn *os.File, onHooks func() ([]byte, error), log *slog.Logger) error {
	for {
		body, err := nsexec.ReadFrame(conn)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("container process exited before it was ready")
			}
			return fmt.Errorf("read from container process: %w", err)
		}
		m, err := decodeMessage(body)
		if err != nil {
			return fmt.Errorf("decode message from container process: %w", err)
		}
		switch m.Type {
		case msgWarning:
			if m.Debug {
				log.Debug(m.Message)
			} else {
				log.Warn(m.Message)
			}
		case msgError:
			return errors.New(m.Error)
		case msgHooks:
			state, err := onHooks()
			if err != nil {
				return err
			}
			if err := writeMessage(conn, message{Type: msgAck, State: state}); err != nil {
				return err
			}
		case msgReady:
			return nil
		default:
			return fmt.Errorf("unexpected message %q from container process", m.Type)
		}
	}
}
