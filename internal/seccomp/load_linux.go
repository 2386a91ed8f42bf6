package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs p on the calling thread only, with seccomp(SECCOMP_SET_MODE_FILTER). The caller must have
// locked the goroutine to its OS thread and set no_new_privs (or hold CAP_SYS_ADMIN), and should exec soon
// after: the filter stays with the thread.
//
// When p.Notify is set it asks for a listener and returns its fd, else -1. The fd is close-on-exec.
func Load(p *Program) (listenerFD int, err error) {
	if p == nil || len(p.Filter) == 0 || len(p.Filter) > MaxInstructions {
		return -1, fmt.Errorf("seccomp: load: program must have 1 to %d instructions", MaxInstructions)
	}
	flags := p.Flags
	if p.Notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			// Without TSYNC_ESRCH the kernel refuses TSYNC with NEW_LISTENER, because a TSYNC failure
			// is reported as a thread id in the same return value as the fd.
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
	} else {
		// The kernel refuses WAIT_KILLABLE_RECV without a listener, and it has no meaning without one.
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	prog := unix.SockFprog{Len: uint16(len(p.Filter)), Filter: &p.Filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(p)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", flags, errno)
	}
	if p.Notify {
		return int(r), nil
	}
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && r != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %#x): thread %d could not be synchronised", flags, r)
	}
	return -1, nil
}

// SupportedFlags lists the known flags the running kernel accepts. Like libseccomp (and so runc), it
// calls seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL): an unknown flag fails with EINVAL before the NULL
// program is read, a known one with EFAULT, and nothing is ever installed.
func SupportedFlags() []string {
	var out []string
	for _, f := range flagTable {
		probe := f.bit
		if f.bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
			// Accepted only together with NEW_LISTENER.
			probe |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		}
		_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(probe), 0)
		if errno == unix.EFAULT {
			out = append(out, string(f.name))
		}
	}
	return out
}

// SupportedActions lists the known actions the running kernel implements, asked with
// SECCOMP_GET_ACTION_AVAIL (Linux 4.14+; on older kernels the probe fails and the list is empty).
func SupportedActions() []string {
	var out []string
	for _, a := range actionTable {
		act := a.ret &^ unix.SECCOMP_RET_DATA
		_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&act)))
		if errno == 0 {
			out = append(out, string(a.name))
		}
	}
	return out
}
