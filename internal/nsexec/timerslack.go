package nsexec

// extern unsigned long berth_host_timer_slack;
// extern int berth_timer_slack_relaxed;
import "C"

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// relaxedTimerSlack is RELAXED_TIMER_SLACK_NS in nsexec.c.
const relaxedTimerSlack = 1000000

// WithHostTimerSlack runs f on a thread whose timer slack is the one this process started with,
// for f to fork a program that must not inherit the relaxed slack the constructor set (a fork
// copies the forking thread's slack, and execve keeps it).
func WithHostTimerSlack(f func() error) error {
	if C.berth_timer_slack_relaxed == 0 {
		return f()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(C.berth_host_timer_slack), 0, 0, 0)
	defer func() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, relaxedTimerSlack, 0, 0, 0) }()
	return f()
}

// RestoreHostTimerSlack gives the calling thread back the slack this process started with, before
// it execs the container's program. The caller must be locked to its thread.
func RestoreHostTimerSlack() {
	if C.berth_timer_slack_relaxed != 0 {
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(C.berth_host_timer_slack), 0, 0, 0)
	}
}
