//go:build linux

package seccomp

import (
	"runtime"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// x32SyscallBit is __X32_SYSCALL_BIT: x32 tasks use the x86_64 entry point and audit arch, and are told
// apart only by this bit in the syscall number.
const x32SyscallBit = 0x40000000

// archInfo describes an architecture the compiler emits code for.
type archInfo struct {
	name  specs.Arch
	audit uint32 // seccomp_data.arch (AUDIT_ARCH_*)
	table []sysEntry
	// args32: the ABI passes 32-bit arguments, so only the low word of seccomp_data.args[i] is compared
	// and rule values are truncated to 32 bits. This is what libseccomp does (x86, arm and x32 are
	// ARCH_SIZE_32 there), so a profile means the same thing under runc and berth.
	args32 bool
	x32    bool // numbers carry x32SyscallBit and share audit with x86_64
	index  func() map[string]uint32
}

func newArch(name specs.Arch, audit uint32, table []sysEntry, args32, x32 bool) *archInfo {
	a := &archInfo{name: name, audit: audit, table: table, args32: args32, x32: x32}
	// A profile looks up every name on every architecture it lists (over a thousand lookups for a
	// Docker-like profile), so the first Compile builds a map; processes that never compile pay nothing.
	a.index = sync.OnceValue(func() map[string]uint32 {
		m := make(map[string]uint32, len(table))
		for _, e := range table {
			m[e.name] = e.nr
		}
		return m
	})
	return a
}

// nr returns the number of the named syscall on this architecture.
func (a *archInfo) nr(name string) (uint32, bool) {
	n, ok := a.index()[name]
	return n, ok
}

var (
	archX86_64  = newArch(specs.ArchX86_64, unix.AUDIT_ARCH_X86_64, syscalls_x86_64[:], false, false)
	archX32     = newArch(specs.ArchX32, unix.AUDIT_ARCH_X86_64, syscalls_x32[:], true, true)
	archX86     = newArch(specs.ArchX86, unix.AUDIT_ARCH_I386, syscalls_x86[:], true, false)
	archAARCH64 = newArch(specs.ArchAARCH64, unix.AUDIT_ARCH_AARCH64, syscalls_aarch64[:], false, false)
	archARM     = newArch(specs.ArchARM, unix.AUDIT_ARCH_ARM, syscalls_arm[:], true, false)
)

// knownArchs maps every architecture name the runtime-spec lists to what we compile for it. A nil entry is
// accepted but gets no code: a process of that architecture cannot run on an amd64 or arm64 host (no
// kernel we run on has such a compat mode), so any syscall claiming it falls to the bad-arch action.
var knownArchs = map[specs.Arch]*archInfo{
	specs.ArchX86:         archX86,
	specs.ArchX86_64:      archX86_64,
	specs.ArchX32:         archX32,
	specs.ArchARM:         archARM,
	specs.ArchAARCH64:     archAARCH64,
	specs.ArchMIPS:        nil,
	specs.ArchMIPS64:      nil,
	specs.ArchMIPS64N32:   nil,
	specs.ArchMIPSEL:      nil,
	specs.ArchMIPSEL64:    nil,
	specs.ArchMIPSEL64N32: nil,
	specs.ArchPPC:         nil,
	specs.ArchPPC64:       nil,
	specs.ArchPPC64LE:     nil,
	specs.ArchS390:        nil,
	specs.ArchS390X:       nil,
	specs.ArchPARISC:      nil,
	specs.ArchPARISC64:    nil,
	specs.ArchRISCV64:     nil,
	specs.ArchLOONGARCH64: nil,
	specs.ArchM68K:        nil,
	specs.ArchSH:          nil,
	specs.ArchSHEB:        nil,
}

// nativeArch is the architecture of the kernel ABI this binary uses; it is always in the filter, as
// libseccomp always includes it. "" means we have no table for it and Compile refuses.
func nativeArch() specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64
	case "arm64":
		return specs.ArchAARCH64
	case "386":
		return specs.ArchX86
	case "arm":
		return specs.ArchARM
	}
	return ""
}
