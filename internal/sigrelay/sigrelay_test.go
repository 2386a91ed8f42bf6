package sigrelay

import (
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func receive(t *testing.T, r *Relay) unix.Signal {
	t.Helper()
	select {
	case s := <-r.C:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no signal relayed within 10s")
		return 0
	}
}

// TestRelaysInOrderAndRestores: caught signals arrive in order; after Stop the previous disposition
// (here: ignored) is back, and a second relay starts clean.
func TestRelaysInOrderAndRestores(t *testing.T) {
	// SIGUSR1/SIGUSR2 ignored beforehand, so that after Stop a stray one is harmless and the
	// restored disposition can be checked.
	ignore := func(s unix.Signal) {
		t.Helper()
		var sa [4]uintptr // struct kernel_sigaction: handler, flags, restorer, mask
		sa[0] = 1         // SIG_IGN
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0); e != 0 {
			t.Fatalf("ignore %v: %v", s, e)
		}
	}
	ignore(unix.SIGUSR1)
	ignore(unix.SIGUSR2)

	r, err := Start(unix.SIGUSR1, unix.SIGUSR2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(unix.SIGUSR1); err == nil {
		t.Fatal("a second concurrent relay was allowed")
	}
	pid := unix.Getpid()
	for _, s := range []unix.Signal{unix.SIGUSR1, unix.SIGUSR2, unix.SIGUSR1} {
		if err := unix.Kill(pid, s); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, r); got != s {
			t.Fatalf("relayed %v, want %v", got, s)
		}
	}
	r.Stop()
	if _, ok := <-r.C; ok {
		t.Fatal("C still open after Stop")
	}
	var old [4]uintptr
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGUSR1), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		t.Fatal(e)
	}
	if old[0] != 1 {
		t.Fatalf("SIGUSR1 handler after Stop is %#x, want SIG_IGN", old[0])
	}
	// Ignored again: this one must not reach a later relay.
	_ = unix.Kill(pid, unix.SIGUSR1)

	r2, err := Start(unix.SIGUSR2)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Stop()
	_ = unix.Kill(pid, unix.SIGUSR2)
	if got := receive(t, r2); got != unix.SIGUSR2 {
		t.Fatalf("second relay got %v, want SIGUSR2", got)
	}
}

func TestRejectsBadSignal(t *testing.T) {
	if _, err := Start(unix.Signal(99)); err == nil {
		t.Fatal("signal 99 accepted")
	}
	if _, err := Start(unix.SIGKILL); err == nil {
		t.Fatal("SIGKILL accepted: it cannot be caught")
	}
	// The failures must leave no relay active.
	r, err := Start(unix.SIGUSR1)
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
}
