package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/console"
	"github.com/berth-dev/berth/internal/linux"
	"github.com/berth-dev/berth/internal/nsexec"
	"github.com/berth-dev/berth/internal/pathrs"
	"github.com/berth-dev/berth/internal/seccomp"
	"github.com/berth-dev/berth/internal/specjson"
)

// IsContainerProcess reports whether this process was started by the runtime to become a container
// process (the nsexec constructor has already placed it in its namespaces).
func IsContainerProcess() bool { return os.Getenv(nsexec.EnvSyncFD) != "" }

// ContainerMain runs the container half. It never returns: it execs the container's program or exits.
func ContainerMain() {
	// Credentials, capabilities and the seccomp filter are per thread: everything happens on this one,
	// which also performs the final execve.
	goruntime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(nsexec.EnvSyncFD))
	if err != nil {
		os.Exit(1)
	}
	os.Unsetenv(nsexec.EnvSyncFD)
	conn := os.NewFile(uintptr(fd), "sync")
	err = containerInit(conn)
	_ = writeMessage(conn, message{Type: msgError, Error: err.Error()})
	os.Exit(1)
}

func containerInit(conn *os.File) error {
	trace("init-go-main")
	if err := nsexec.EnterLateNetNS(); err != nil {
		return err
	}
	body, fds, err := nsexec.ReadFrameFDs(conn)
	if err != nil {
		return fmt.Errorf("read init config: %w", err)
	}
	cfg, err := decodeInitConfig(body)
	if err != nil {
		return err
	}
	if err := cfg.resolveFDs(fds); err != nil {
		return err
	}
	// Nothing the runtime passed beyond the preserved descriptors may reach the container's program.
	if err := unix.CloseRange(uint(3+cfg.PreserveFDs), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	// The runtime half moves this process into its cgroups while it starts; anything that depends on
	// them waits for its word.
	joined := false
	cfg.waitJoined = func() error {
		if joined {
			return nil
		}
		m, err := readMessage(conn)
		if err != nil {
			return err
		}
		if m.Type != msgJoined {
			return fmt.Errorf("expected the runtime to report the cgroups joined, got %q", m.Type)
		}
		for _, t := range cfg.CgroupTasks {
			// "0" moves the calling thread, the one that will exec, and nothing else.
			if err := writeAt(t.FD, t.Path, "0"); err != nil {
				return fmt.Errorf("join cgroup (%s): %w", t.Path, err)
			}
		}
		for _, t := range cfg.CgroupTasks {
			unix.Close(t.FD)
		}
		// Per thread, like the cgroups above: the exec'ing thread's is what the program gets.
		if cfg.CgroupNS && cfg.Mode == modeInit {
			if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("unshare the cgroup namespace: %w", err)
			}
		}
		joined = true
		return nil
	}
	warn := func(msg string) { _ = writeMessage(conn, message{Type: msgWarning, Message: msg}) }
	debug := func(msg string) { _ = writeMessage(conn, message{Type: msgWarning, Message: msg, Debug: true}) }
	switch cfg.Mode {
	case modeInit:
		return initContainer(conn, cfg, warn, debug)
	case modeExec:
		return initExec(conn, cfg, warn, debug)
	}
	return fmt.Errorf("unknown init mode %q", cfg.Mode)
}

// resolveFDs turns the config's descriptor indices into the descriptors that came with it.
func (cfg *initConfig) resolveFDs(fds []int) error {
	var bad error
	at := func(field string, i int) int {
		if i < 0 {
			return -1
		}
		if i >= len(fds) {
			bad = fmt.Errorf("init config: %s names descriptor %d of the %d passed", field, i, len(fds))
			return -1
		}
		return fds[i]
	}
	cfg.ConsoleFD = at("consoleFD", cfg.ConsoleFD)
	cfg.FifoDirFD = at("fifoDirFD", cfg.FifoDirFD)
	cfg.SeccompFD = at("seccompFD", cfg.SeccompFD)
	for k, v := range cfg.SourceFDs {
		cfg.SourceFDs[k] = at("sourceFDs", v)
	}
	for k, v := range cfg.IDMapFDs {
		cfg.IDMapFDs[k] = at("idmapFDs", v)
	}
	for i := range cfg.CgroupTasks {
		cfg.CgroupTasks[i].FD = at("cgroupTasks", cfg.CgroupTasks[i].FD)
	}
	return bad
}

func fdFile(fd int, name string) *os.File {
	if fd < 0 {
		return nil
	}
	return os.NewFile(uintptr(fd), name)
}

func filterFrom(cfg *initConfig) *seccomp.Program {
	if cfg.Filter == nil {
		return nil
	}
	return &seccomp.Program{Filter: cfg.Filter, Flags: cfg.FilterFlags, Notify: cfg.FilterNotify}
}

// initContainer sets up a new container around this process (pid 1 of its pid namespace, when it has
// one), reports ready, waits for start, and execs the container's program.
func initContainer(conn *os.File, cfg *initConfig, warn, debug func(string)) error {
	spec, err := decodeInitSpec(cfg.Spec)
	if err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	trace("init-config")
	b := &rootfsBuilder{spec: spec, cfg: cfg, warn: warn}
	hostNS := !cfg.MountNS
	{
		if err := b.prepare(hostNS); err != nil {
			return err
		}
		if spec.Process != nil {
			// runc creates a missing cwd; images rely on it (Docker's WORKDIR).
			d, err := pathrs.MkdirAll(b.root, spec.Process.Cwd, 0o755)
			if err != nil {
				return fmt.Errorf("process.cwd: %w", err)
			}
			d.Close()
		}
	}
	trace("init-rootfs-prepared")
	var tty *os.File
	if spec.Process != nil && spec.Process.Terminal {
		var err error
		if tty, err = setupTerminal(cfg, spec.Process, b.root); err != nil {
			return err
		}
	}
	state := cfg.ContainerState
	if cfg.Hooks {
		// Hooks of the container namespace run in the container's cgroups too.
		if err := cfg.waitJoined(); err != nil {
			return err
		}
		if err := writeMessage(conn, message{Type: msgHooks}); err != nil {
			return err
		}
		reply, err := readMessage(conn)
		if err != nil {
			return fmt.Errorf("wait for the runtime's hooks: %w", err)
		}
		if reply.Type != msgAck {
			return fmt.Errorf("runtime answered %q to hooks", reply.Type)
		}
		state = reply.State
		if spec.Hooks != nil {
			if err := runHooks("createContainer", spec.Hooks.CreateContainer, state); err != nil {
				return err
			}
		}
	}
	if err := pivot(b.root, cfg.NoPivot, hostNS); err != nil {
		return err
	}
	b.root.Close()
	trace("init-pivoted")
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("domainname: %w", err)
		}
	}
	for k, v := range spec.Linux.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := linux.WriteFile(p, []byte(v)); err != nil {
			return fmt.Errorf("linux.sysctl[%q]: %w", k, err)
		}
	}
	// After the sysctls: /proc/sys is usually among the read-only paths.
	if err := finalizeRootfs(spec, hostNS); err != nil {
		return err
	}
	trace("init-finalized")
	if mp := spec.Linux.MemoryPolicy; mp != nil {
		if err := setMemoryPolicy(mp); err != nil {
			return err
		}
	}
	if pers := spec.Linux.Personality; pers != nil {
		v := 0x0000 // PER_LINUX
		if pers.Domain == specs.PerLinux32 {
			v = 0x0008
		}
		if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, uintptr(v), 0, 0); errno != 0 {
			return fmt.Errorf("linux.personality: %w", errno)
		}
	}

	var proc *execProcess
	if spec.Process != nil {
		proc = &execProcess{
			p: spec.Process, id: idFromState(state), filter: filterFrom(cfg), tty: tty,
			seccompConn: fdFile(cfg.SeccompFD, "seccomp"), preserveFDs: cfg.PreserveFDs,
			noNewKeyring: cfg.NoNewKeyring, warn: warn, debug: debug, setsidWithoutTTY: true,
		}
		if proc.seccompConn != nil {
			proc.seccompState = seccompState(state, cfg.SeccompMetadata)
		}
		if err := proc.prepare(); err != nil {
			return err
		}
	}

	trace("init-prepared")
	if err := cfg.waitJoined(); err != nil {
		return err
	}
	fifoDir := fdFile(cfg.FifoDirFD, "state-dir")
	// Opening the FIFO blocks until start; whether it can be opened at all is checked now, while
	// there is still someone to tell.
	if err := unix.Faccessat(int(fifoDir.Fd()), fifoName, unix.W_OK, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("the start FIFO cannot be opened by the container's root: %w", err)
	}
	if err := writeMessage(conn, message{Type: msgReady}); err != nil {
		return err
	}
	conn.Close()

	// Block until `start` opens the FIFO for reading. It is opened relative to the state directory's
	// descriptor, which works after pivot_root without needing /proc.
	fifo, err := openFifo(fifoDir)
	fifoDir.Close()
	if err != nil {
		os.Exit(1)
	}
	fail := func(err error) {
		fmt.Fprintf(fifo, "%v", err)
		os.Exit(1)
	}
	if _, err := fifo.Write([]byte{'0'}); err != nil {
		os.Exit(1)
	}
	if proc == nil {
		fail(fmt.Errorf("process: the config has no process to start"))
	}
	if spec.Hooks != nil && len(spec.Hooks.StartContainer) > 0 {
		if err := runHooks("startContainer", spec.Hooks.StartContainer, state); err != nil {
			fail(err)
		}
	}
	// The FIFO is close-on-exec: `start` sees EOF once the program runs.
	fail(proc.execute())
	return nil
}

// writeAt writes value to path below the directory descriptor dirfd.
func writeAt(dirfd int, path, value string) error {
	fd, err := unix.Openat(dirfd, path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte(value))
	return err
}

// decodeInitSpec decodes the configuration the runtime half validated.
func decodeInitSpec(raw []byte) (*specs.Spec, error) {
	s := &specs.Spec{}
	if err := specjson.Unmarshal(raw, s); err != nil {
		return nil, err
	}
	if s.Root == nil {
		s.Root = &specs.Root{}
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return s, nil
}

func openFifo(dir *os.File) (*os.File, error) {
	for {
		fd, err := unix.Openat(int(dir.Fd()), fifoName, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), fifoName), nil
	}
}

// setupTerminal allocates the process's pseudo-terminal from the container's own devpts and sends
// the master side over the console socket. With a new mount namespace, this happens before
// pivot_root: root is the rootfs descriptor, and /dev/console is bound to the terminal.
func setupTerminal(cfg *initConfig, p *specs.Process, root *os.File) (*os.File, error) {
	sock := fdFile(cfg.ConsoleFD, "console-socket")
	if sock == nil {
		return nil, fmt.Errorf("process.terminal: no console socket was given")
	}
	defer sock.Close()
	ptmx := "/dev/ptmx"
	if root != nil {
		f, err := pathrs.Open(root, "/dev/pts/ptmx", unix.O_PATH|unix.O_CLOEXEC)
		if err != nil {
			f, err = pathrs.Open(root, "/dev/ptmx", unix.O_PATH|unix.O_CLOEXEC)
		}
		if err != nil {
			return nil, fmt.Errorf("process.terminal: no ptmx in the container: %w", err)
		}
		defer f.Close()
		ptmx = pathrs.ProcPath(f)
	}
	master, slave, err := console.OpenPty(ptmx)
	if err != nil {
		return nil, fmt.Errorf("process.terminal: %w", err)
	}
	defer master.Close()
	if p.ConsoleSize != nil {
		if err := console.SetSize(slave, p.ConsoleSize.Height, p.ConsoleSize.Width); err != nil {
			return nil, fmt.Errorf("process.consoleSize: %w", err)
		}
	}
	if err := unix.Fchown(int(slave.Fd()), int(p.User.UID), -1); err != nil {
		return nil, fmt.Errorf("process.terminal: chown the terminal to the process's user: %w", err)
	}
	if root != nil {
		if c, err := pathrs.EnsureFile(root, "/dev/console", 0o600); err == nil {
			err = doMount(pathrs.ProcPath(slave), pathrs.ProcPath(c), "", unix.MS_BIND, "")
			c.Close()
			if err != nil {
				return nil, fmt.Errorf("bind the terminal to /dev/console: %w", err)
			}
		}
	}
	if err := console.SendFile(sock, master); err != nil {
		return nil, fmt.Errorf("process.terminal: %w", err)
	}
	return slave, nil
}

func readMessage(conn *os.File) (*message, error) {
	body, err := nsexec.ReadFrame(conn)
	if err != nil {
		return nil, err
	}
	m, err := decodeMessage(body)
	if err != nil {
		return nil, fmt.Errorf("decode message: %w", err)
	}
	if m.Type == msgError {
		return nil, errors.New(m.Error)
	}
	return &m, nil
}

// idFromState reads the container id from a state document the runtime half wrote.
func idFromState(state []byte) string {
	var id string
	r := specjson.NewReader(state)
	_ = r.Object(func(key []byte) error {
		if string(key) == "id" {
			var err error
			id, err = r.String()
			return err
		}
		return r.Skip()
	})
	return id
}

// seccompState is the runtime-spec's ContainerProcessState, sent with a seccomp listener (rare
// enough for encoding/json).
func seccompState(state []byte, metadata string) []byte {
	var s specs.State
	_ = json.Unmarshal(state, &s)
	b, _ := json.Marshal(specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: os.Getpid(), Metadata: metadata, State: s,
	})
	return b
}

// initExec runs an extra process in an existing container: this process has joined the container's
// namespaces (and, through the runtime, its cgroups) already.
func initExec(conn *os.File, cfg *initConfig, warn, debug func(string)) error {
	trace("exec-init-config")
	p := cfg.Process
	var tty *os.File
	if p.Terminal {
		var err error
		if tty, err = setupTerminal(cfg, p, nil); err != nil {
			return err
		}
	}
	proc := &execProcess{
		p: p, id: idFromState(cfg.ContainerState), filter: filterFrom(cfg), tty: tty,
		seccompConn: fdFile(cfg.SeccompFD, "seccomp"), preserveFDs: cfg.PreserveFDs,
		noNewKeyring: true, warn: warn, debug: debug,
	}
	if proc.seccompConn != nil {
		proc.seccompState = seccompState(cfg.ContainerState, cfg.SeccompMetadata)
	}
	if err := proc.prepare(); err != nil {
		return err
	}
	trace("exec-prepared")
	if err := cfg.waitJoined(); err != nil {
		return err
	}
	trace("exec-joined")
	if err := writeMessage(conn, message{Type: msgReady}); err != nil {
		return err
	}
	// The socket stays open and close-on-exec: the runtime reads EOF when the program runs, or an
	// error frame if the last steps fail.
	return proc.execute()
}
