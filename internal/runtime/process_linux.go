package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/capabilities"
	"github.com/berth-dev/berth/internal/linux"
	"github.com/berth-dev/berth/internal/nsexec"
	"github.com/berth-dev/berth/internal/seccomp"
)

var rlimitResources = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3, specs.SchedISO: 4,
	specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

// execProcess is a process about to become the container's program. Its methods run on the locked
// thread of the container half, in the container's namespaces and root.
type execProcess struct {
	p      *specs.Process
	id     string
	path   string // the program, resolved in the container's root
	env    []string
	caps   *capabilities.Set
	filter *seccomp.Program
	// tty is the slave side of the process's terminal, when it has one.
	tty *os.File
	// seccompConn reaches linux.seccomp.listenerPath; seccompState is what is sent with the listener.
	seccompConn      *os.File
	seccompState     []byte
	preserveFDs      int
	noNewKeyring     bool
	warn, debug      func(string)
	setsidWithoutTTY bool
}

// prepare does everything that may fail for reasons worth reporting at create (or exec) time, and
// that can be done before the runtime says go.
func (e *execProcess) prepare() error {
	p := e.p
	caps, err := capabilities.FromSpec(p.Capabilities)
	if err != nil {
		return err
	}
	e.caps = caps
	if skip := caps.NotRaisable(); len(skip) > 0 {
		e.debug(fmt.Sprintf("process.capabilities.ambient: %s not raised: an ambient capability must also be permitted and inheritable", strings.Join(skip, ", ")))
	}
	e.env = withHome(p.Env, p.User.UID)
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("process.cwd %q: %w", p.Cwd, err)
	}
	path, err := lookPath(p.Args[0], e.env)
	if err != nil {
		return fmt.Errorf("process.args[0]: %w", err)
	}
	e.path = path
	if !e.noNewKeyring {
		// A session keyring of the container's own, so that it cannot read the runtime's keys.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + e.id); err != nil && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("join a new session keyring: %w", err)
		}
	}
	for _, r := range p.Rlimits {
		lim := &unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		var err error
		if r.Type == "RLIMIT_NOFILE" {
			// Through package syscall, which then stops syscall.Exec from putting back the soft limit
			// the Go runtime raised for itself at start.
			err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard})
		} else {
			err = unix.Prlimit(0, rlimitResources[r.Type], lim, nil)
		}
		if err != nil {
			var cur unix.Rlimit
			_ = unix.Prlimit(0, rlimitResources[r.Type], nil, &cur)
			if errors.Is(err, unix.EPERM) && r.Hard > cur.Max {
				return fmt.Errorf("process.rlimits %s: raising the hard limit from %d to %d needs CAP_SYS_RESOURCE, which the runtime lacks: %w", r.Type, cur.Max, r.Hard, err)
			}
			return fmt.Errorf("process.rlimits %s (soft %d, hard %d): %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := e.setOOMScoreAdj(*p.OOMScoreAdj); err != nil {
			return err
		}
	}
	if p.Scheduler != nil {
		if err := setScheduler(p.Scheduler); err != nil {
			return err
		}
	}
	if p.IOPriority != nil {
		prio := ioprioClasses[p.IOPriority.Class]<<13 | p.IOPriority.Priority
		if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, 1 /* IOPRIO_WHO_PROCESS */, 0, uintptr(prio)); errno != 0 {
			return fmt.Errorf("process.ioPriority: ioprio_set: %w", errno)
		}
	}
	if p.ApparmorProfile != "" {
		if err := setLSMExecLabel("apparmor", "exec "+p.ApparmorProfile); err != nil {
			return fmt.Errorf("process.apparmorProfile %q: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if err := setLSMExecLabel("selinux", p.SelinuxLabel); err != nil {
			return fmt.Errorf("process.selinuxLabel %q: %w", p.SelinuxLabel, err)
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
	}
	return nil
}

// setOOMScoreAdj writes the score. Lowering it below the current value needs CAP_SYS_RESOURCE; where
// the runtime lacks it (as on hosts that run the runtime inside a restricted container), the score is
// left at the lowest value allowed and a warning says so, rather than failing the container.
func (e *execProcess) setOOMScoreAdj(v int) error {
	err := linux.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(v)))
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("process.oomScoreAdj %d: %w", v, err)
	}
	cur, _ := os.ReadFile("/proc/self/oom_score_adj")
	e.warn(fmt.Sprintf("process.oomScoreAdj %d: the kernel refused to lower oom_score_adj below %s, which needs CAP_SYS_RESOURCE and the runtime lacks it; keeping %s",
		v, strings.TrimSpace(string(cur)), strings.TrimSpace(string(cur))))
	return nil
}

type schedAttr struct {
	size     uint32
	policy   uint32
	flags    uint64
	nice     int32
	priority uint32
	runtime  uint64
	deadline uint64
	period   uint64
}

func setScheduler(s *specs.Scheduler) error {
	attr := schedAttr{
		size: uint32(unsafe.Sizeof(schedAttr{})), policy: schedPolicies[s.Policy], nice: s.Nice,
		priority: uint32(s.Priority), runtime: s.Runtime, deadline: s.Deadline, period: s.Period,
	}
	for _, f := range s.Flags {
		attr.flags |= schedFlags[f]
	}
	if _, _, errno := unix.Syscall(unix.SYS_SCHED_SETATTR, 0, uintptr(unsafe.Pointer(&attr)), 0); errno != 0 {
		return fmt.Errorf("process.scheduler: sched_setattr: %w", errno)
	}
	return nil
}

// setLSMExecLabel asks a Linux security module to switch label at the next exec. Without the module
// the request cannot be honoured, and confinement must not be silently dropped.
func setLSMExecLabel(lsm, value string) error {
	var enabled bool
	switch lsm {
	case "apparmor":
		b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
		enabled = err == nil && strings.TrimSpace(string(b)) == "Y"
	case "selinux":
		_, err := os.Stat("/sys/fs/selinux/enforce")
		enabled = err == nil
	}
	if !enabled {
		return fmt.Errorf("%s is not enabled on this host, so the label cannot be applied", lsm)
	}
	path := "/proc/self/attr/" + lsm + "/exec"
	if _, err := os.Stat(path); err != nil {
		path = "/proc/self/attr/exec"
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write([]byte(value)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// lsmEnabled reports whether SELinux is active, for mount labels.
func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// execute drops into the process: descriptors, umask, cwd, credentials, capabilities and seccomp,
// then execve. It returns only on failure.
func (e *execProcess) execute() error {
	p := e.p
	if e.tty != nil {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
		if err := unix.IoctlSetInt(int(e.tty.Fd()), unix.TIOCSCTTY, 0); err != nil {
			return fmt.Errorf("make the terminal the controlling terminal: %w", err)
		}
		for fd := 0; fd < 3; fd++ {
			if err := unix.Dup3(int(e.tty.Fd()), fd, 0); err != nil {
				return fmt.Errorf("dup terminal to fd %d: %w", fd, err)
			}
		}
		e.tty.Close()
	} else if e.setsidWithoutTTY {
		_, _ = unix.Setsid()
	}
	// Everything the runtime passed beyond the preserved descriptors dies at exec.
	if err := unix.CloseRange(uint(3+e.preserveFDs), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	umask := 0o022
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	unix.Umask(umask)
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("process.cwd %q: %w", p.Cwd, err)
	}
	// A cwd reached through a leaked descriptor would be outside the root (CVE-2024-21626): the
	// kernel then reports it as unreachable.
	if wd, err := getcwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("process.cwd %q resolves outside the container's root (%q, %v)", p.Cwd, wd, err)
	}
	if e.filter != nil && !p.NoNewPrivileges {
		// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the process may be about
		// to lose; the profile then has to allow the few syscalls that follow.
		if err := e.loadSeccomp(); err != nil {
			return err
		}
	}
	if err := e.caps.ApplyBounding(); err != nil {
		return err
	}
	if err := e.setUser(); err != nil {
		return err
	}
	if err := e.caps.Apply(); err != nil {
		return fmt.Errorf("process.capabilities: %w", err)
	}
	if e.filter != nil && p.NoNewPrivileges {
		if err := e.loadSeccomp(); err != nil {
			return err
		}
	}
	nsexec.RestoreHostTimerSlack()
	trace("init-execve")
	// syscall.Exec, not unix.Exec: it restores the soft RLIMIT_NOFILE that the Go runtime raised for
	// itself, so that the container does not inherit it.
	err := syscall.Exec(e.path, p.Args, e.env)
	return fmt.Errorf("exec %s: %w", e.path, err)
}

func getcwd() (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n-1]), nil
}

func (e *execProcess) setUser() error {
	u := e.p.User
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	gids := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		gids[i] = int(g)
	}
	// setgroups is refused in a user namespace whose setgroups file says deny; that only matters if
	// there are groups to set.
	if err := unix.Setgroups(gids); err != nil && (len(gids) > 0 || !errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("process.user.additionalGids %v: %w", u.AdditionalGids, err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("process.user.gid %d: %w (is it mapped in the user namespace?)", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("process.user.uid %d: %w (is it mapped in the user namespace?)", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keep-capabilities: %w", err)
	}
	return nil
}

func (e *execProcess) loadSeccomp() error {
	fd, err := seccomp.Load(e.filter)
	if err != nil {
		return fmt.Errorf("linux.seccomp: %w", err)
	}
	if fd < 0 {
		return nil
	}
	listener := os.NewFile(uintptr(fd), "seccomp-listener")
	defer listener.Close()
	if e.seccompConn == nil {
		return fmt.Errorf("linux.seccomp: the profile uses SCMP_ACT_NOTIFY but linux.seccomp.listenerPath is not set")
	}
	rights := unix.UnixRights(fd)
	if err := unix.Sendmsg(int(e.seccompConn.Fd()), e.seccompState, rights, nil, 0); err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: send the listener: %w", err)
	}
	e.seccompConn.Close()
	return nil
}

// lookPath finds a program as execvp would, with the PATH of the process's own environment.
func lookPath(file string, env []string) (string, error) {
	check := func(p string) error {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return unix.EISDIR
		}
		if st.Mode&0o111 == 0 {
			return unix.EACCES
		}
		return nil
	}
	if strings.Contains(file, "/") {
		if err := check(file); err != nil {
			return "", fmt.Errorf("exec %q: %w", file, err)
		}
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", file)
}

// withHome adds HOME from the container's /etc/passwd (or "/") when the spec does not set it, as
// shells and most programs expect one.
func withHome(env []string, uid uint32) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			return env
		}
	}
	home := "/"
	if b, err := linux.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Split(line, ":")
			if len(fields) >= 6 && fields[2] == strconv.FormatUint(uint64(uid), 10) && fields[5] != "" {
				home = fields[5]
				break
			}
		}
	}
	return append(append([]string(nil), env...), "HOME="+home)
}
