package cgroups

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux"
)

// devRule is a validated linux.resources.devices entry.
type devRule struct {
	allow bool
	typ   byte  // 'a' (all), 'b' (block) or 'c' (char)
	major int64 // -1 for any
	minor int64 // -1 for any
	// access is a mask of the kernel's BPF_DEVCG_ACC_* bits (mknod 1, read 2, write 4),
	// which are also used for v1's "m", "r", "w".
	access uint8
}

const accAll = unix.BPF_DEVCG_ACC_MKNOD | unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_WRITE

// deviceRules validates the spec's device list. A missing type means "a" and a missing
// access means "rwm", as the spec says; a missing major or minor means any.
func deviceRules(list []specs.LinuxDeviceCgroup) ([]devRule, error) {
	out := make([]devRule, 0, len(list))
	for i, d := range list {
		field := fmt.Sprintf("linux.resources.devices[%d]", i)
		r := devRule{allow: d.Allow, major: -1, minor: -1}
		switch d.Type {
		case "", "a":
			r.typ = 'a'
		case "b", "c":
			r.typ = d.Type[0]
		default:
			return nil, fmt.Errorf("%s.type: %w: %q (want a, b or c)", field, ErrInvalid, d.Type)
		}
		for _, n := range []struct {
			name string
			p    *int64
			dst  *int64
		}{{"major", d.Major, &r.major}, {"minor", d.Minor, &r.minor}} {
			if n.p == nil {
				continue
			}
			// -1 is what some generators write for "any"; anything else negative or
			// beyond 32 bits is no device number.
			if *n.p < -1 || *n.p > math.MaxUint32 {
				return nil, fmt.Errorf("%s.%s: %w: %d", field, n.name, ErrInvalid, *n.p)
			}
			*n.dst = *n.p
		}
		for _, c := range d.Access {
			switch c {
			case 'r':
				r.access |= unix.BPF_DEVCG_ACC_READ
			case 'w':
				r.access |= unix.BPF_DEVCG_ACC_WRITE
			case 'm':
				r.access |= unix.BPF_DEVCG_ACC_MKNOD
			default:
				return nil, fmt.Errorf("%s.access: %w: %q (want letters from rwm)", field, ErrInvalid, d.Access)
			}
		}
		if d.Access == "" {
			r.access = accAll
		}
		out = append(out, r)
	}
	return out, nil
}

// wildcard reports whether the rule is about every device with every access.
func (r devRule) wildcard() bool {
	return r.typ == 'a' && r.major == -1 && r.minor == -1 && r.access == accAll
}

// v1Lines renders the rule for devices.allow / devices.deny. The kernel reads any line
// starting with "a" as "all devices, all access" (and resets the list), so a type-a rule that
// is narrower than that is written as the same rule for b and for c, which means what the
// spec means.
func (r devRule) v1Lines() []string {
	if r.wildcard() {
		return []string{"a"}
	}
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	acc := ""
	for _, b := range []struct {
		bit uint8
		c   string
	}{{unix.BPF_DEVCG_ACC_READ, "r"}, {unix.BPF_DEVCG_ACC_WRITE, "w"}, {unix.BPF_DEVCG_ACC_MKNOD, "m"}} {
		if r.access&b.bit != 0 {
			acc += b.c
		}
	}
	rest := " " + num(r.major) + ":" + num(r.minor) + " " + acc
	if r.typ == 'a' {
		return []string{"b" + rest, "c" + rest}
	}
	return []string{string(r.typ) + rest}
}

// setDevices applies the device list. On v1 it writes the rules in order to devices.allow
// and devices.deny: a list that starts with deny-all writes "a" to devices.deny first, which
// resets the cgroup to "nothing allowed", and later rules then win over earlier ones as the
// spec says. v1 applies each write at once, so during an update the container briefly has
// only the rules written so far (deny-all first means it errs on the side of denying).
//
// Without a v1 devices hierarchy (pure v2, or a hybrid host without one) the rules become an
// eBPF program attached to the cgroup2 directory; see deviceFilter. On a hybrid host that has
// the v1 devices hierarchy, v1 alone is used: the unified hierarchy is bookkeeping only.
func (m *Manager) setDevices(r *specs.LinuxResources) ([]string, error) {
	if len(r.Devices) == 0 {
		return nil, nil
	}
	rules, err := deviceRules(r.Devices)
	if err != nil {
		return nil, err
	}
	if dir, ok := m.paths["devices"]; ok {
		// Each rule is its own write(2); the two files are opened once (a container's default
		// rules are a dozen lines).
		files := map[string]*linux.Writer{}
		defer func() {
			for _, w := range files {
				w.Close()
			}
		}()
		for i, rule := range rules {
			file := "devices.deny"
			if rule.allow {
				file = "devices.allow"
			}
			field := fmt.Sprintf("linux.resources.devices[%d]", i)
			for _, line := range rule.v1Lines() {
				w := files[file]
				if w == nil {
					var err error
					if w, err = linux.OpenWriter(filepath.Join(dir, file)); err != nil {
						return nil, fieldErr(field, err)
					}
					files[file] = w
				}
				if err := w.Write([]byte(line)); err != nil {
					return nil, fieldErr(field, err)
				}
			}
		}
		return nil, nil
	}
	dir, ok := m.v2Dir()
	if !ok {
		return nil, fmt.Errorf("linux.resources.devices: %w: no devices hierarchy and no cgroup2 hierarchy", ErrNotAvailable)
	}
	if err := setDeviceFilter(dir, rules); err != nil {
		return nil, fmt.Errorf("linux.resources.devices: %w", err)
	}
	return nil, nil
}
