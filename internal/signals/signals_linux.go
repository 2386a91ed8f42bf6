package signals

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// sigrtmin and sigrtmax are the kernel's bounds; glibc reserves the first two real-time signals for
// itself and reports SIGRTMIN as 34, which is the number runc users pass.
const (
	sigrtmin = 34
	sigrtmax = 64
)

// Parse turns a signal name or number into a signal.
func Parse(s string) (unix.Signal, error) {
	if s == "" {
		return 0, fmt.Errorf("empty signal")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > sigrtmax {
			return 0, fmt.Errorf("invalid signal number %d (want 1-%d)", n, sigrtmax)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	name = strings.TrimPrefix(name, "SIG")
	if strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		base, sign := sigrtmin, 1
		if strings.HasPrefix(name, "RTMAX") {
			base, sign = sigrtmax, -1
		}
		rest := name[5:]
		off := 0
		if rest != "" {
			if (sign == 1 && rest[0] != '+') || (sign == -1 && rest[0] != '-') {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
			v, err := strconv.Atoi(rest[1:])
			if err != nil || v < 0 {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
			off = v
		}
		n := base + sign*off
		if n < sigrtmin || n > sigrtmax {
			return 0, fmt.Errorf("signal %q is out of the real-time range", s)
		}
		return unix.Signal(n), nil
	}
	sig := unix.SignalNum("SIG" + name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}
