//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests re-exec the test binary: a seccomp filter cannot be removed, and a killed process must
// not be the test runner. The child runs TestKernelHelper, which runs one case on a locked OS thread.

const helperEnv = "BERTH_SECCOMP_TEST_HELPER"

type kernelCase struct {
	run func() error
	// wantSignal is the signal that must end the child; 0 means it must pass.
	wantSignal syscall.Signal
	amd64Only  bool
}

var kernelCases = map[string]kernelCase{
	"errno":         {run: caseErrno},
	"args":          {run: caseArgs},
	"kill-process":  {run: caseKillProcess, wantSignal: unix.SIGSYS},
	"x32":           {run: caseX32, amd64Only: true},
	"bad-arch-kill": {run: caseBadArch, amd64Only: true},
	"notify":        {run: caseNotify},
	"tsync-notify":  {run: caseTsyncNotify},
}

func TestKernel(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("running as a helper")
	}
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		t.Skipf("kernel without seccomp: %v", err)
	}
	names := make([]string, 0, len(kernelCases))
	for n := range kernelCases {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		kc := kernelCases[name]
		t.Run(name, func(t *testing.T) {
			if kc.amd64Only && runtime.GOARCH != "amd64" {
				t.Skip("needs an x86_64 kernel")
			}
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestKernelHelper$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"="+name)
			cmd.Dir = t.TempDir() // a core file, if any, lands here
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			switch {
			case kc.wantSignal != 0:
				if !errors.As(err, &ee) {
					t.Fatalf("child was not killed: %v\n%s", err, out)
				}
				ws := ee.Sys().(syscall.WaitStatus)
				if !ws.Signaled() || ws.Signal() != kc.wantSignal {
					t.Fatalf("child ended with %v, want signal %v\n%s", ws, kc.wantSignal, out)
				}
				if !strings.Contains(string(out), "filter loaded") {
					t.Fatalf("child died before loading the filter\n%s", out)
				}
			case err != nil:
				t.Fatalf("child: %v\n%s", err, out)
			case !strings.Contains(string(out), "helper ok"):
				t.Fatalf("child did not run the case\n%s", out)
			}
		})
	}
}

func TestKernelHelper(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("only run by TestKernel")
	}
	kc, ok := kernelCases[name]
	if !ok {
		t.Fatalf("unknown case %q", name)
	}
	// A killed child must not leave a core file behind.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := kc.run(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("helper ok")
}

// onFilteredThread runs fn on a fresh locked thread after setting no_new_privs there and loading the
// profile. The goroutine never unlocks, so the thread, and its filter, die with it.
func onFilteredThread(s *specs.LinuxSeccomp, fn func(listener int) error) error {
	p, err := Compile(s)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			done <- err
			return
		}
		fd, err := Load(p)
		if err != nil {
			done <- err
			return
		}
		fmt.Println("filter loaded")
		done <- fn(fd)
	}()
	return <-done
}

func sys(nr uintptr, args ...uintptr) (uintptr, unix.Errno) {
	var a [6]uintptr
	copy(a[:], args)
	r, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return r, e
}

func wantErrno(what string, nr uintptr, want unix.Errno, args ...uintptr) error {
	if _, e := sys(nr, args...); e != want {
		return fmt.Errorf("%s: errno %d (%v), want %d (%v)", what, int(e), e, int(want), want)
	}
	return nil
}

func caseErrno() error {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EBADFD))},
			{Names: []string{"uname"}, Action: specs.ActErrno}, // EPERM by default
		},
	}
	err := onFilteredThread(s, func(listener int) error {
		if listener != -1 {
			return fmt.Errorf("listener %d without NOTIFY rules", listener)
		}
		var u unix.Utsname
		if err := wantErrno("getpid", unix.SYS_GETPID, unix.EBADFD); err != nil {
			return err
		}
		if err := wantErrno("uname", unix.SYS_UNAME, unix.EPERM, uintptr(unsafe.Pointer(&u))); err != nil {
			return err
		}
		return wantErrno("getppid", unix.SYS_GETPPID, 0)
	})
	if err != nil {
		return err
	}
	// The filter is on that one thread only: this goroutine runs on another.
	if pid, e := sys(unix.SYS_GETPID); e != 0 || int(pid) != os.Getpid() {
		return fmt.Errorf("getpid on an unfiltered thread: %d, %v", pid, e)
	}
	return nil
}

func caseArgs() error {
	arg := func(i uint, op specs.LinuxSeccompOperator, v uint64) []specs.LinuxSeccompArg {
		return []specs.LinuxSeccompArg{{Index: i, Op: op, Value: v}}
	}
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EDOM)), Args: arg(0, specs.OpNotEqual, 0xffffffff)},
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOMSG)), Args: arg(0, specs.OpEqualTo, 5)},
			{Names: []string{"getuid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.E2BIG)), Args: arg(1, specs.OpLessThan, 0x100000000)},
			{Names: []string{"getgid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ERANGE)), Args: arg(2, specs.OpGreaterEqual, 0x100000005)},
			{Names: []string{"geteuid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOSPC)), Args: arg(5, specs.OpGreaterThan, 0x1ffffffff)},
			{Names: []string{"getegid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EROFS)), Args: arg(4, specs.OpLessEqual, 7)},
			{Names: []string{"dup3"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 2, Op: specs.OpMaskedEqual, Value: unix.O_CLOEXEC, ValueTwo: unix.O_CLOEXEC}}},
		},
	}
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return onFilteredThread(s, func(int) error {
		checks := []struct {
			what string
			nr   uintptr
			want unix.Errno
			args []uintptr
		}{
			{"personality(query)", unix.SYS_PERSONALITY, 0, []uintptr{0xffffffff}},
			{"personality(PER_LINUX)", unix.SYS_PERSONALITY, unix.EDOM, []uintptr{0}},
			{"getppid(5)", unix.SYS_GETPPID, unix.ENOMSG, []uintptr{5}},
			{"getppid(0x100000005)", unix.SYS_GETPPID, 0, []uintptr{0x100000005}},
			{"getppid(6)", unix.SYS_GETPPID, 0, []uintptr{6}},
			{"getuid(_, 0xffffffff)", unix.SYS_GETUID, unix.E2BIG, []uintptr{0, 0xffffffff}},
			{"getuid(_, 0x100000000)", unix.SYS_GETUID, 0, []uintptr{0, 0x100000000}},
			{"getgid(_, _, 0x100000004)", unix.SYS_GETGID, 0, []uintptr{0, 0, 0x100000004}},
			{"getgid(_, _, 0x100000005)", unix.SYS_GETGID, unix.ERANGE, []uintptr{0, 0, 0x100000005}},
			{"getgid(_, _, 0xffffffff)", unix.SYS_GETGID, 0, []uintptr{0, 0, 0xffffffff}},
			{"geteuid(a5=0x1ffffffff)", unix.SYS_GETEUID, 0, []uintptr{0, 0, 0, 0, 0, 0x1ffffffff}},
			{"geteuid(a5=0x200000000)", unix.SYS_GETEUID, unix.ENOSPC, []uintptr{0, 0, 0, 0, 0, 0x200000000}},
			{"getegid(a4=7)", unix.SYS_GETEGID, unix.EROFS, []uintptr{0, 0, 0, 0, 7}},
			{"getegid(a4=0x100000007)", unix.SYS_GETEGID, 0, []uintptr{0, 0, 0, 0, 0x100000007}},
			{"dup3(O_CLOEXEC)", unix.SYS_DUP3, unix.EPERM, []uintptr{uintptr(fd), 1000, unix.O_CLOEXEC}},
			{"dup3(0)", unix.SYS_DUP3, 0, []uintptr{uintptr(fd), 1000, 0}},
		}
		if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
			return fmt.Errorf("64-bit argument checks need a 64-bit host")
		}
		for _, c := range checks {
			if err := wantErrno(c.what, c.nr, c.want, c.args...); err != nil {
				return err
			}
		}
		return unix.Close(1000)
	})
}

func caseKillProcess() error {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}},
	}
	err := onFilteredThread(s, func(int) error {
		sys(unix.SYS_GETPPID)
		return errors.New("getppid returned")
	})
	if err != nil {
		return err
	}
	return errors.New("not killed")
}

func caseX32() error {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(55)},
			{Names: []string{"getpgrp"}, Action: specs.ActErrno, ErrnoRet: uintp(56), Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 7}}},
		},
	}
	return onFilteredThread(s, func(int) error {
		const getppid, getpgrp = 110, 111 // x86_64 numbers, shared with x32
		if err := wantErrno("x86_64 getppid", getppid, 55); err != nil {
			return err
		}
		if err := wantErrno("x32 getppid", x32SyscallBit|getppid, 55); err != nil {
			return err
		}
		// x32 compares only the low word of an argument, as libseccomp does.
		if err := wantErrno("x32 getpgrp(0x100000007)", x32SyscallBit|getpgrp, 56, 0x100000007); err != nil {
			return err
		}
		if _, e := sys(getpgrp, 0x100000007); e == 56 {
			return errors.New("x86_64 getpgrp(0x100000007) matched a low-word rule")
		}
		return nil
	})
}

func caseBadArch() error {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow} // x32 not listed
	p, err := Compile(s)
	if err != nil {
		return err
	}
	tids := make(chan int, 1)
	returned := make(chan unix.Errno, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			panic(err)
		}
		if _, err := Load(p); err != nil {
			panic(err)
		}
		tids <- unix.Gettid()
		_, e := sys(x32SyscallBit | 39)
		returned <- e
	}()
	tid := <-tids
	// A killed thread disappears from /proc/self/task, except the thread group leader, which stays a
	// zombie until the whole process exits (the Go scheduler may well have put us on it).
	status := "/proc/self/task/" + strconv.Itoa(tid) + "/status"
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case e := <-returned:
			return fmt.Errorf("x32 syscall returned (errno %v) instead of killing the thread", e)
		default:
		}
		st, err := os.ReadFile(status)
		if errors.Is(err, os.ErrNotExist) || strings.Contains(string(st), "State:\tZ") {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("thread %d still alive", tid)
}

// seccompNotif and seccompNotifResp mirror struct seccomp_notif and struct seccomp_notif_resp.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	data  struct {
		nr   int32
		arch uint32
		ip   uint64
		args [6]uint64
	}
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

func caseNotify() error {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}},
	}
	if slices.Contains(SupportedFlags(), string(specs.LinuxSeccompFlagWaitKillableRecv)) {
		s.Flags = append(s.Flags, specs.LinuxSeccompFlagWaitKillableRecv)
	}
	listeners := make(chan int, 1)
	result := make(chan uintptr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- onFilteredThread(s, func(fd int) error {
			listeners <- fd
			r, e := sys(unix.SYS_GETPPID)
			if e != 0 {
				return fmt.Errorf("notified getppid: %v", e)
			}
			result <- r
			return nil
		})
	}()
	var fd int
	select {
	case fd = <-listeners:
	case err := <-errc:
		return err
	}
	if fd < 0 {
		return fmt.Errorf("listener fd %d", fd)
	}
	if link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil || link != "anon_inode:seccomp notify" {
		return fmt.Errorf("listener fd %d is %q (%v)", fd, link, err)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		return fmt.Errorf("listener fd flags %#x, %v: want close-on-exec", fl, err)
	}
	var n seccompNotif
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); e != 0 {
		return fmt.Errorf("SECCOMP_IOCTL_NOTIF_RECV: %v", e)
	}
	if n.data.nr != unix.SYS_GETPPID {
		return fmt.Errorf("notified syscall %d, want getppid", n.data.nr)
	}
	id := n.id
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_ID_VALID, uintptr(unsafe.Pointer(&id))); e != 0 {
		return fmt.Errorf("SECCOMP_IOCTL_NOTIF_ID_VALID: %v", e)
	}
	resp := seccompNotifResp{id: n.id, val: 4242}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 {
		return fmt.Errorf("SECCOMP_IOCTL_NOTIF_SEND: %v", e)
	}
	if r := <-result; r != 4242 {
		return fmt.Errorf("getppid returned %d, want the agent's 4242", r)
	}
	return <-errc
}

// caseTsyncNotify checks that TSYNC is honoured when asked (other threads get the filter) and that it
// combines with a listener.
func caseTsyncNotify() error {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActNotify},
			{Names: []string{"getpgrp"}, Action: specs.ActErrno, ErrnoRet: uintp(57)},
		},
	}
	err := onFilteredThread(s, func(fd int) error {
		if fd < 0 {
			return fmt.Errorf("listener fd %d", fd)
		}
		return unix.Close(fd)
	})
	if err != nil {
		return err
	}
	return wantErrno("getpgrp on another thread", unix.SYS_GETPGRP, 57)
}

func TestSupported(t *testing.T) {
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		t.Skipf("kernel without seccomp: %v", err)
	}
	flags := SupportedFlags()
	t.Logf("supported flags: %q", flags)
	for _, f := range []string{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"} { // Linux 3.17 and 4.14
		if !slices.Contains(flags, f) {
			t.Errorf("%s not supported", f)
		}
	}
	acts := SupportedActions()
	t.Logf("supported actions: %q", acts)
	for _, a := range []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL"} {
		if !slices.Contains(acts, a) {
			t.Errorf("%s not supported", a)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	if _, err := Load(&Program{}); err == nil {
		t.Errorf("Load of an empty program succeeded")
	}
	if _, err := Load(nil); err == nil {
		t.Errorf("Load(nil) succeeded")
	}
}
