package capabilities

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// names lists the capabilities this package knows, indexed by number (linux/capability.h).
var names = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// Known returns every capability name this package knows.
func Known() []string { return append([]string(nil), names...) }

var lastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(names) - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return len(names) - 1
	}
	return n
})

// Supported returns the names the running kernel knows.
func Supported() []string {
	n := min(lastCap()+1, len(names))
	return append([]string(nil), names[:n]...)
}

// Value returns the number of a capability, refusing names unknown to this package or to the kernel.
func Value(name string) (int, error) {
	for i, n := range names {
		if n == name {
			if i > lastCap() {
				return 0, fmt.Errorf("capability %s is not supported by this kernel (last is %s)", name, names[lastCap()])
			}
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown capability %q", name)
}

// Set holds the five sets as bit masks.
type Set struct {
	Bounding, Effective, Inheritable, Permitted, Ambient uint64
}

// FromSpec parses a process's capabilities. A nil spec gives empty sets, which is what the spec means.
func FromSpec(c *specs.LinuxCapabilities) (*Set, error) {
	s := &Set{}
	if c == nil {
		return s, nil
	}
	for _, f := range []struct {
		field string
		names []string
		dst   *uint64
	}{
		{"bounding", c.Bounding, &s.Bounding},
		{"effective", c.Effective, &s.Effective},
		{"inheritable", c.Inheritable, &s.Inheritable},
		{"permitted", c.Permitted, &s.Permitted},
		{"ambient", c.Ambient, &s.Ambient},
	} {
		for i, n := range f.names {
			v, err := Value(n)
			if err != nil {
				return nil, fmt.Errorf("process.capabilities.%s[%d]: %w", f.field, i, err)
			}
			*f.dst |= 1 << uint(v)
		}
	}
	return s, nil
}

// ApplyBounding drops every capability outside the bounding set from the calling thread.
func (s *Set) ApplyBounding() error {
	for i := 0; i <= lastCap() && i < 64; i++ {
		if s.Bounding&(1<<uint(i)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop %s from the bounding set: %w", names[i], err)
		}
	}
	return nil
}

// NotRaisable lists the ambient capabilities Apply will skip because they are not also permitted and
// inheritable.
func (s *Set) NotRaisable() []string {
	var out []string
	for i := 0; i < len(names); i++ {
		if s.Ambient&(1<<uint(i)) != 0 && s.Permitted&s.Inheritable&(1<<uint(i)) == 0 {
			out = append(out, names[i])
		}
	}
	return out
}

// Apply sets the effective, permitted and inheritable sets, then the ambient set, on the calling thread.
// The kernel raises an ambient capability only if it is permitted and inheritable too; configurations
// in the wild (runc's own default) list ambient capabilities without the inheritable ones, and runc
// goes on without them, so those are skipped (NotRaisable lists them) rather than failing.
func (s *Set) Apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range 2 {
		data[i].Effective = uint32(s.Effective >> (32 * i))
		data[i].Permitted = uint32(s.Permitted >> (32 * i))
		data[i].Inheritable = uint32(s.Inheritable >> (32 * i))
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w%s", err, s.missingHint())
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	for i := 0; i <= lastCap() && i < 64; i++ {
		if s.Ambient&(1<<uint(i)) == 0 {
			continue
		}
		if s.Permitted&s.Inheritable&(1<<uint(i)) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w", names[i], err)
		}
	}
	return nil
}

// missingHint names the requested capabilities the calling thread cannot grant, since capset only
// ever reduces the permitted set.
func (s *Set) missingHint() string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return ""
	}
	have := uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
	var miss []string
	for i := 0; i < len(names); i++ {
		if (s.Permitted|s.Effective)&(1<<uint(i)) != 0 && have&(1<<uint(i)) == 0 {
			miss = append(miss, names[i])
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return fmt.Sprintf(" (the runtime itself lacks %s, so the container cannot be given it)", strings.Join(miss, ", "))
}
