//go:build linux

package seccomp

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func uintp(v uint) *uint { return &v }

func nr(t testing.TB, a *archInfo, name string) uint32 {
	t.Helper()
	n, ok := lookupSyscall(a.table, name)
	if !ok {
		t.Fatalf("%s has no syscall %q", a.name, name)
	}
	return n
}

func mustCompile(t testing.TB, s *specs.LinuxSeccomp, native specs.Arch) *Program {
	t.Helper()
	p, err := compile(s, native)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

func run(t testing.TB, p *Program, d seccompData) uint32 {
	t.Helper()
	r, err := runBPF(p.Filter, d)
	if err != nil {
		t.Fatalf("bpf: %v\n%s", err, disasm(p.Filter))
	}
	return r
}

func TestCompileErrors(t *testing.T) {
	ok := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getpid"}, Action: specs.ActErrno},
				{Names: []string{"read"}, Action: specs.ActErrno},
				{Names: []string{"write"}, Action: specs.ActErrno},
				{Names: []string{"close"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}}},
			},
		}
	}
	tests := []struct {
		name string
		edit func(s *specs.LinuxSeccomp)
		want string
	}{
		{"nil", nil, "linux.seccomp: no profile"},
		{"no default", func(s *specs.LinuxSeccomp) { s.DefaultAction = "" }, "linux.seccomp.defaultAction: required"},
		{"unknown default", func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_NOPE" },
			`linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"`},
		{"default errno on allow", func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uintp(1) },
			`linux.seccomp.defaultErrnoRet: not allowed with action "SCMP_ACT_ALLOW"`},
		{"default errno too big", func(s *specs.LinuxSeccomp) { s.DefaultAction, s.DefaultErrnoRet = specs.ActErrno, uintp(65536) },
			"linux.seccomp.defaultErrnoRet: 65536 does not fit"},
		{"unknown arch", func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{specs.ArchX86, "SCMP_ARCH_VAX"} },
			`linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX"`},
		{"unknown flag", func(s *specs.LinuxSeccomp) {
			s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_NOPE"}
		}, `linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_NOPE"`},
		{"no names", func(s *specs.LinuxSeccomp) { s.Syscalls[1].Names = nil }, "linux.seccomp.syscalls[1].names: must name at least one syscall"},
		{"empty name", func(s *specs.LinuxSeccomp) { s.Syscalls[2].Names = []string{"read", ""} },
			"linux.seccomp.syscalls[2].names[1]: empty syscall name"},
		{"no action", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "" }, "linux.seccomp.syscalls[0].action: required"},
		{"unknown action", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_FOO" },
			`linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_FOO"`},
		{"errno on kill", func(s *specs.LinuxSeccomp) { s.Syscalls[1].Action, s.Syscalls[1].ErrnoRet = specs.ActKill, uintp(3) },
			`linux.seccomp.syscalls[1].errnoRet: not allowed with action "SCMP_ACT_KILL"`},
		{"errno too big", func(s *specs.LinuxSeccomp) { s.Syscalls[1].ErrnoRet = uintp(1 << 20) },
			"linux.seccomp.syscalls[1].errnoRet: 1048576 does not fit"},
		{"unknown op", func(s *specs.LinuxSeccomp) { s.Syscalls[3].Args[0].Op = "SCMP_CMP_FOO" },
			`linux.seccomp.syscalls[3].args[0].op: unknown operator "SCMP_CMP_FOO"`},
		{"no op", func(s *specs.LinuxSeccomp) { s.Syscalls[3].Args[0].Op = "" }, "linux.seccomp.syscalls[3].args[0].op: required"},
		{"index", func(s *specs.LinuxSeccomp) {
			s.Syscalls[3].Args = append(s.Syscalls[3].Args, specs.LinuxSeccompArg{Index: 6, Op: specs.OpEqualTo})
		}, "linux.seccomp.syscalls[3].args[1].index: 6 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *specs.LinuxSeccomp
			if tt.edit != nil {
				s = ok()
				tt.edit(s)
			}
			_, err := compile(s, specs.ArchX86_64)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want prefix %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidProfile) {
				t.Errorf("error %q is not ErrInvalidProfile", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %q is not a *FieldError", err)
			}
		})
	}
	if _, err := compile(ok(), specs.ArchX86_64); err != nil {
		t.Fatalf("base profile: %v", err)
	}
	if _, err := compile(ok(), "SCMP_ARCH_PPC64LE"); err == nil {
		t.Errorf("compiling for a native arch without a table succeeded")
	}
}

func TestCompileAccepted(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(38),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchMIPS, specs.ArchS390X, specs.ArchRISCV64, specs.ArchX86_64},
		Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog,
			specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "no_such_syscall", "socketcall", "write"}, Action: specs.ActAllow},
			{Names: []string{"ioctl"}, Action: specs.ActNotify},
			{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: uintp(38)}, // same as default: skipped
		},
	}
	p := mustCompile(t, s, specs.ArchX86_64)
	wantFlags := uint(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG |
		unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if p.Flags != wantFlags {
		t.Errorf("flags %#x, want %#x", p.Flags, wantFlags)
	}
	if !p.Notify {
		t.Errorf("Notify not set")
	}
	if want := []string{"no_such_syscall", "socketcall"}; !slices.Equal(p.Unknown, want) {
		t.Errorf("Unknown = %q, want %q", p.Unknown, want)
	}
	// Listed arches without code add nothing: only x86_64 is dispatched.
	jeqs := 0
	for _, ins := range p.Filter {
		if ins.Code == opJeqK && (ins.K == unix.AUDIT_ARCH_X86_64 || ins.K == unix.AUDIT_ARCH_I386) {
			jeqs++
		}
	}
	if jeqs != 1 {
		t.Errorf("%d arch checks, want 1\n%s", jeqs, disasm(p.Filter))
	}

	// A NOTIFY rule that names nothing this filter knows does not ask for a listener.
	s.Syscalls[1].Names = []string{"no_such_syscall"}
	if p := mustCompile(t, s, specs.ArchX86_64); p.Notify {
		t.Errorf("Notify set for an unreachable NOTIFY rule")
	}
	if got := KnownActions(); len(got) != 9 {
		t.Errorf("KnownActions = %q", got)
	}
	if got := KnownOperators(); len(got) != 7 {
		t.Errorf("KnownOperators = %q", got)
	}
	if got := KnownFlags(); len(got) != 4 {
		t.Errorf("KnownFlags = %q", got)
	}
	if got := KnownArchs(); len(got) != 23 || !slices.Contains(got, "SCMP_ARCH_LOONGARCH64") {
		t.Errorf("KnownArchs = %q", got)
	}
}

func TestTables(t *testing.T) {
	for _, tt := range []struct {
		arch *archInfo
		name string
		want uint32
	}{
		{archX86_64, "read", 0}, {archX86_64, "getpid", 39}, {archX86_64, "clone3", 435}, {archX86_64, "_sysctl", 156},
		{archX86, "getpid", 20}, {archX86, "socketcall", 102}, {archX86, "_llseek", 140},
		{archX32, "read", 0x40000000}, {archX32, "getpid", 0x40000000 | 39}, {archX32, "rt_sigaction", 0x40000000 | 512},
		{archX32, "pwritev2", 0x40000000 | 547}, {archAARCH64, "getpid", 172}, {archAARCH64, "newfstatat", 79},
		{archARM, "getpid", 20}, {archARM, "set_tls", 0xf0005}, {archARM, "sync_file_range2", 341},
		{archARM, "arm_fadvise64_64", 270}, {archARM, "restart_syscall", 0},
	} {
		if got := nr(t, tt.arch, tt.name); got != tt.want {
			t.Errorf("%s %s = %#x, want %#x", tt.arch.name, tt.name, got, tt.want)
		}
	}
	for _, missing := range []struct {
		arch *archInfo
		name string
	}{{archX32, "uselib"}, {archX86_64, "socketcall"}, {archAARCH64, "open"}, {archARM, "syscall_mask"}} {
		if _, ok := lookupSyscall(missing.arch.table, missing.name); ok {
			t.Errorf("%s has %q", missing.arch.name, missing.name)
		}
	}
	for _, a := range []*archInfo{archX86_64, archX86, archX32, archAARCH64, archARM} {
		if !slices.IsSortedFunc(a.table, func(x, y sysEntry) int { return strings.Compare(x.name, y.name) }) {
			t.Errorf("%s table not sorted", a.name)
		}
		if len(a.table) < 300 {
			t.Errorf("%s table has %d entries", a.name, len(a.table))
		}
	}
}

var (
	auditX8664 = uint32(unix.AUDIT_ARCH_X86_64)
	auditI386  = uint32(unix.AUDIT_ARCH_I386)
	auditArm64 = uint32(unix.AUDIT_ARCH_AARCH64)
	auditArm   = uint32(unix.AUDIT_ARCH_ARM)
)

const (
	retAllow = unix.SECCOMP_RET_ALLOW
	retKillT = unix.SECCOMP_RET_KILL_THREAD
	retKillP = unix.SECCOMP_RET_KILL_PROCESS
)

func errnoRet(e uint32) uint32 { return unix.SECCOMP_RET_ERRNO | e }

func TestDecisionsArch(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uintp(11)},
			{Names: []string{"openat"}, Action: specs.ActKillProcess},
		},
	}
	p := mustCompile(t, s, specs.ArchX86_64)
	cases := []struct {
		name string
		d    seccompData
		want uint32
	}{
		{"x86_64 getpid", seccompData{nr: 39, arch: auditX8664}, errnoRet(11)},
		{"x86_64 openat", seccompData{nr: 257, arch: auditX8664}, retKillP},
		{"x86_64 other", seccompData{nr: 20, arch: auditX8664}, retAllow},
		{"i386 getpid", seccompData{nr: 20, arch: auditI386}, errnoRet(11)},
		{"i386 39 is mkdir", seccompData{nr: 39, arch: auditI386}, retAllow},
		{"i386 openat", seccompData{nr: 295, arch: auditI386}, retKillP},
		{"x32 not listed", seccompData{nr: x32SyscallBit | 39, arch: auditX8664}, retKillT},
		{"x32 bit with any number", seccompData{nr: x32SyscallBit | 1000, arch: auditX8664}, retKillT},
		{"negative number", seccompData{nr: 0xffffffff, arch: auditX8664}, retKillT},
		{"aarch64 not listed", seccompData{nr: 172, arch: auditArm64}, retKillT},
		{"arm not listed", seccompData{nr: 20, arch: auditArm}, retKillT},
		{"unknown arch", seccompData{nr: 20, arch: 0x12345678}, retKillT},
		{"huge number", seccompData{nr: 0x3fffffff, arch: auditX8664}, retAllow},
	}
	for _, c := range cases {
		if got := run(t, p, c.d); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}

	// With x32 listed, x32 calls get x32 rules and never x86_64 ones.
	s.Architectures = append(s.Architectures, specs.ArchX32)
	s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"rt_sigaction"}, Action: specs.ActTrap})
	p = mustCompile(t, s, specs.ArchX86_64)
	for _, c := range []struct {
		name string
		d    seccompData
		want uint32
	}{
		{"x32 getpid", seccompData{nr: x32SyscallBit | 39, arch: auditX8664}, errnoRet(11)},
		{"x32 rt_sigaction", seccompData{nr: x32SyscallBit | 512, arch: auditX8664}, unix.SECCOMP_RET_TRAP},
		{"x32 13 is not rt_sigaction", seccompData{nr: x32SyscallBit | 13, arch: auditX8664}, retAllow},
		{"x86_64 rt_sigaction", seccompData{nr: 13, arch: auditX8664}, unix.SECCOMP_RET_TRAP},
		{"x86_64 512 is nothing", seccompData{nr: 512, arch: auditX8664}, retAllow},
		{"x32 beyond the table", seccompData{nr: 0xffffffff, arch: auditX8664}, retAllow},
	} {
		if got := run(t, p, c.d); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}

	// x32 alone on an x86_64 host still has x86_64 (native); on an arm64 host x86_64 calls are bad-arch.
	s.Architectures = []specs.Arch{specs.ArchX32, specs.ArchARM}
	p = mustCompile(t, s, specs.ArchAARCH64)
	for _, c := range []struct {
		name string
		d    seccompData
		want uint32
	}{
		{"aarch64 getpid", seccompData{nr: 172, arch: auditArm64}, errnoRet(11)},
		{"arm getpid", seccompData{nr: 20, arch: auditArm}, errnoRet(11)},
		{"x32 getpid", seccompData{nr: x32SyscallBit | 39, arch: auditX8664}, errnoRet(11)},
		{"x86_64 getpid", seccompData{nr: 39, arch: auditX8664}, retKillT},
		{"i386 getpid", seccompData{nr: 20, arch: auditI386}, retKillT},
	} {
		if got := run(t, p, c.d); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
}

// boundary are argument and rule values around the word edges, including values that differ only in
// their high 32 bits.
var boundary = []uint64{
	0, 1, 2, 5, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
	0x100000000, 0x100000001, 0x100000005, 0x1fffffffe, 0x1ffffffff, 0x200000005,
	0x7fffffffffffffff, 0x8000000000000000, 0xffffffff00000000, 0xffffffff00000005,
	0xfffffffffffffffe, 0xffffffffffffffff,
}

func TestOperatorsExhaustive(t *testing.T) {
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	// Every argument value near a boundary, ±1.
	var xs []uint64
	for _, b := range boundary {
		xs = append(xs, b-1, b, b+1)
	}
	for _, archName := range []specs.Arch{specs.ArchX86_64, specs.ArchX86} {
		audit, getpid := auditX8664, uint32(39)
		if archName == specs.ArchX86 {
			audit, getpid = auditI386, 20
		}
		for _, op := range ops {
			for _, v := range boundary {
				for _, v2 := range []uint64{0, 5, 0xffffffff00000005} {
					if op != specs.OpMaskedEqual && v2 != 0 {
						continue
					}
					s := &specs.LinuxSeccomp{
						DefaultAction: specs.ActAllow,
						Architectures: []specs.Arch{specs.ArchX86},
						Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno,
							Args: []specs.LinuxSeccompArg{{Index: 3, Op: op, Value: v, ValueTwo: v2}}}},
					}
					p := mustCompile(t, s, specs.ArchX86_64)
					for _, x := range xs {
						d := seccompData{nr: getpid, arch: audit}
						d.args[3] = x
						d.args[2] = ^x // a neighbour that must not be looked at
						got := run(t, p, d)
						want := oracle(s, specs.ArchX86_64, d)
						if got != want {
							t.Fatalf("%s %s value %#x valueTwo %#x arg %#x: got %#x, want %#x\n%s",
								archName, op, v, v2, x, got, want, disasm(p.Filter))
						}
					}
				}
			}
		}
	}
	// Spot checks of the oracle itself, so the exhaustive loop is not comparing two wrong answers.
	spot := func(op specs.LinuxSeccompOperator, v, v2, x uint64, narrow bool, want bool) {
		t.Helper()
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: op, Value: v, ValueTwo: v2}}}}}
		d := seccompData{nr: 39, arch: auditX8664, args: [6]uint64{x}}
		if narrow {
			d = seccompData{nr: 20, arch: auditI386, args: [6]uint64{x}}
		}
		got := run(t, mustCompile(t, s, specs.ArchX86_64), d) == errnoRet(1)
		if got != want {
			t.Errorf("%s %#x (%#x) on %#x narrow=%t: matched %t, want %t", op, v, v2, x, narrow, got, want)
		}
	}
	spot(specs.OpLessThan, 0x100000000, 0, 0xffffffff, false, true)
	spot(specs.OpLessThan, 0x100000000, 0, 0x100000000, false, false)
	spot(specs.OpGreaterThan, 0xffffffff, 0, 0x100000000, false, true)
	spot(specs.OpGreaterThan, 0x100000005, 0, 0x200000000, false, true)
	spot(specs.OpGreaterThan, 0x100000005, 0, 0x100000004, false, false)
	spot(specs.OpLessEqual, 0x100000005, 0, 0x000000006, false, true)
	spot(specs.OpGreaterEqual, 0x100000005, 0, 0x000000006, false, false)
	spot(specs.OpEqualTo, 5, 0, 0x100000005, false, false)
	spot(specs.OpNotEqual, 5, 0, 0x100000005, false, true)
	spot(specs.OpMaskedEqual, 0xff00000000ff, 0x120000000034, 0x12aa00000f34, false, true)
	spot(specs.OpMaskedEqual, 0xff00000000ff, 0x120000000034, 0x13aa00000f34, false, false)
	spot(specs.OpMaskedEqual, 0x0f, 0x1f, 0xff, false, true) // the datum is masked too, as in libseccomp
	// 32-bit ABIs compare the low word with the value truncated, as libseccomp does.
	spot(specs.OpEqualTo, 0xffffffffffffff9c, 0, 0xffffff9c, true, true)
	spot(specs.OpEqualTo, 0x100000005, 0, 5, true, true)
	spot(specs.OpLessThan, 0x100000005, 0, 4, true, true)
	spot(specs.OpLessThan, 0x100000005, 0, 0x100000004, true, true)
}

func TestDecisionsRules(t *testing.T) {
	a := func(i uint, op specs.LinuxSeccompOperator, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: op, Value: v}
	}
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(1),
		Syscalls: []specs.LinuxSyscall{
			// Conditional rules in order: first match wins.
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{a(0, specs.OpEqualTo, 0)}},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uintp(22), Args: []specs.LinuxSeccompArg{a(0, specs.OpLessThan, 10)}},
			{Names: []string{"personality"}, Action: specs.ActLog, Args: []specs.LinuxSeccompArg{a(0, specs.OpEqualTo, 5)}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{a(0, specs.OpEqualTo, 0xffffffff)}},
			// ANDed args.
			{Names: []string{"dup3"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				a(0, specs.OpGreaterEqual, 3), a(1, specs.OpLessThan, 100),
				{Index: 2, Op: specs.OpMaskedEqual, Value: unix.O_CLOEXEC, ValueTwo: 0}}},
			// Same index twice: each condition is a rule of its own (runc).
			{Names: []string{"kill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{a(1, specs.OpEqualTo, 0), a(1, specs.OpEqualTo, 15)}},
			// Unconditional wins over conditional, whatever the order.
			{Names: []string{"tgkill"}, Action: specs.ActTrace, Args: []specs.LinuxSeccompArg{a(0, specs.OpEqualTo, 1)}},
			{Names: []string{"tgkill"}, Action: specs.ActAllow},
			{Names: []string{"tgkill"}, Action: specs.ActKillProcess},
			// Rule equal to the default is skipped, even with args.
			{Names: []string{"getppid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{a(0, specs.OpEqualTo, 1)}},
			{Names: []string{"getppid"}, Action: specs.ActAllow},
			// A tautology makes the rule unconditional; a contradiction drops it.
			{Names: []string{"getuid"}, Action: specs.ActLog, Args: []specs.LinuxSeccompArg{a(0, specs.OpEqualTo, 7)}},
			{Names: []string{"getuid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{a(0, specs.OpGreaterEqual, 0)}},
			{Names: []string{"getgid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{a(0, specs.OpLessThan, 0)}},
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"uname"}, Action: specs.ActTrace},
		},
	}
	p := mustCompile(t, s, specs.ArchX86_64)
	call := func(name string, args ...uint64) seccompData {
		d := seccompData{nr: nr(t, archX86_64, name), arch: auditX8664}
		copy(d.args[:], args)
		return d
	}
	for _, c := range []struct {
		d    seccompData
		want uint32
	}{
		{call("personality", 0), retAllow},
		{call("personality", 5), errnoRet(22)},
		{call("personality", 9), errnoRet(22)},
		{call("personality", 10), errnoRet(1)},
		{call("personality", 0xffffffff), retAllow},
		{call("personality", 0x1ffffffff), errnoRet(1)},
		{call("personality", 0x100000000), errnoRet(1)},
		{call("dup3", 3, 99, 0), retAllow},
		{call("dup3", 3, 99, unix.O_CLOEXEC), errnoRet(1)},
		{call("dup3", 3, 99, unix.O_CLOEXEC<<32), retAllow},
		{call("dup3", 2, 99, 0), errnoRet(1)},
		{call("dup3", 3, 100, 0), errnoRet(1)},
		{call("kill", 1, 0), retAllow},
		{call("kill", 1, 15), retAllow},
		{call("kill", 1, 9), errnoRet(1)},
		{call("tgkill", 1), retAllow},
		{call("tgkill", 2), retAllow},
		{call("getppid", 1), retAllow},
		{call("getuid", 7), retAllow},
		{call("getgid"), errnoRet(1)},
		{call("read"), retAllow},
		{call("write"), retAllow},
		{call("uname"), unix.SECCOMP_RET_TRACE | 1},
		{call("close"), errnoRet(1)},
	} {
		got := run(t, p, c.d)
		if got != c.want {
			t.Errorf("nr %d args %#x: got %#x, want %#x", c.d.nr, c.d.args, got, c.want)
		}
		if o := oracle(s, specs.ArchX86_64, c.d); o != c.want {
			t.Errorf("oracle for nr %d args %#x: got %#x, want %#x", c.d.nr, c.d.args, o, c.want)
		}
	}
}

// dockerLike synthesises a profile shaped like moby's default (it is not a copy): an allow-list of about
// 350 names taken from the tables, with a deny-list carved out, a dozen rules with arguments, default
// ERRNO.
func dockerLike(t testing.TB, archs ...specs.Arch) *specs.LinuxSeccomp {
	deny := map[string]bool{}
	for _, n := range []string{"mount", "umount2", "umount", "reboot", "kexec_load", "kexec_file_load", "init_module",
		"finit_module", "delete_module", "swapon", "swapoff", "pivot_root", "acct", "settimeofday", "clock_settime",
		"stime", "adjtimex", "clock_adjtime", "bpf", "perf_event_open", "ptrace", "personality", "clone", "clone3",
		"unshare", "setns", "keyctl", "add_key", "request_key", "syslog", "vhangup", "quotactl", "open_by_handle_at",
		"lookup_dcookie", "userfaultfd", "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree",
		"sethostname", "setdomainname", "iopl", "ioperm", "create_module", "get_kernel_syms", "query_module",
		"nfsservctl", "uselib", "_sysctl", "ustat", "sysfs", "vm86", "vm86old", "socket"} {
		deny[n] = true
	}
	seen := map[string]bool{}
	var names []string
	for _, tab := range [][]sysEntry{archX86_64.table, archX86.table} {
		for _, e := range tab {
			if !deny[e.name] && !seen[e.name] {
				seen[e.name] = true
				names = append(names, e.name)
			}
		}
	}
	slices.Sort(names)
	// Keep every 8th name out so the allow-list has holes, as real ones do.
	var allow []string
	for i, n := range names {
		if i%8 != 7 {
			allow = append(allow, n)
		}
	}
	if len(allow) > 350 {
		allow = allow[:350]
	}
	allow = append(allow, "arm_fadvise64_64", "breakpoint", "cacheflush", "set_tls") // other arches' names
	arg := func(i uint, op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: op, Value: v, ValueTwo: v2}
	}
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(1),
		Architectures:   archs,
		Syscalls: []specs.LinuxSyscall{
			{Names: allow, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 0, 0)}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 8, 0)}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 0x20000, 0)}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 0x20008, 0)}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 0xffffffff, 0)}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpMaskedEqual, 0x7e020000, 0)}},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(38)},
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpNotEqual, 40, 0)}},
			{Names: []string{"ptrace"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpLessEqual, 0x4207, 0), arg(1, specs.OpGreaterThan, 0, 0)}},
			{Names: []string{"sync_file_range2", "arm_sync_file_range"}, Action: specs.ActAllow},
			{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: uintp(25), Args: []specs.LinuxSeccompArg{arg(1, specs.OpMaskedEqual, 0xffffffff, 0x5412)}},
			{Names: []string{"mount"}, Action: specs.ActLog, Args: []specs.LinuxSeccompArg{arg(3, specs.OpMaskedEqual, 0x1000, 0x1000)}},
		},
	}
	return s
}

func TestInstructionCounts(t *testing.T) {
	all := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM}
	for _, tt := range []struct {
		name   string
		s      *specs.LinuxSeccomp
		native specs.Arch
		max    int
	}{
		{"docker-like x86_64", dockerLike(t, specs.ArchX86_64), specs.ArchX86_64, 400},
		{"docker-like x86_64+x86+x32", dockerLike(t, specs.ArchX86_64, specs.ArchX86, specs.ArchX32), specs.ArchX86_64, 1000},
		{"docker-like arm64+arm", dockerLike(t, specs.ArchAARCH64, specs.ArchARM), specs.ArchAARCH64, 800},
		{"docker-like all five", dockerLike(t, all...), specs.ArchX86_64, 2000},
		{"empty", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, specs.ArchX86_64, 8},
	} {
		p := mustCompile(t, tt.s, tt.native)
		t.Logf("%s: %d instructions", tt.name, len(p.Filter))
		if len(p.Filter) > tt.max {
			t.Errorf("%s: %d instructions, want at most %d", tt.name, len(p.Filter), tt.max)
		}
		if err := verify(p.Filter); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}

	// Every syscall of every arch with its own argument rule: far more than the kernel takes.
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: all}
	for i, e := range archX86.table {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{e.name}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: uint64(i)}, {Index: 1, Op: specs.OpGreaterThan, Value: uint64(i) << 32}}})
	}
	_, err := compile(s, specs.ArchX86_64)
	if err == nil || !errors.Is(err, ErrInvalidProfile) || !strings.Contains(err.Error(), "more than the kernel's limit of 4096") {
		t.Errorf("oversized profile: err = %v", err)
	}
}

// TestDockerLikeDecisions runs the big profile through the interpreter for every syscall number of every
// arch (and some beyond), with argument values at the edges, against the oracle. The program is large
// enough that far jumps and trampolines are exercised.
func TestDockerLikeDecisions(t *testing.T) {
	all := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM}
	s := dockerLike(t, all...)
	p := mustCompile(t, s, specs.ArchX86_64)
	far := false
	for _, ins := range p.Filter {
		far = far || ins.Code == opJa
	}
	if !far {
		t.Logf("no trampolines in a %d-instruction program", len(p.Filter))
	}
	audits := map[*archInfo]uint32{archX86_64: auditX8664, archX32: auditX8664, archX86: auditI386, archAARCH64: auditArm64, archARM: auditArm}
	argSets := [][6]uint64{{}, {0xffffffff, 1}, {8, 0x5412}, {0x100000008, 0x105412}, {40, 0, 0, 0x1000}, {0x7e020000}}
	for a, audit := range audits {
		nrs := map[uint32]bool{}
		for _, e := range a.table {
			nrs[e.nr] = true
			nrs[e.nr+1] = true
			nrs[e.nr-1] = true
		}
		base := uint32(0)
		if a.x32 {
			base = x32SyscallBit
		}
		for _, n := range []uint32{base, base + 1000, base + 0x3fffffff, 0xffffffff} {
			nrs[n] = true
		}
		for n := range nrs {
			for _, args := range argSets {
				d := seccompData{nr: n, arch: audit, args: args}
				if got, want := run(t, p, d), oracle(s, specs.ArchX86_64, d); got != want {
					t.Fatalf("%s nr %#x args %#x: got %#x, want %#x", a.name, n, args, got, want)
				}
			}
		}
	}
}

// TestRandomProfiles compares the compiled filter with the oracle on random profiles built to collide:
// few syscalls, many rules, boundary values, actions that sometimes equal the default.
func TestRandomProfiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		s, native := randomProfile(rng)
		p, err := compile(s, native)
		if err != nil {
			t.Fatalf("profile %d: %v", i, err)
		}
		for j := 0; j < 40; j++ {
			d := randomData(rng, s, native)
			if got, want := run(t, p, d), oracle(s, native, d); got != want {
				t.Fatalf("profile %d %+v\ndata %+v: got %#x, want %#x\n%s", i, s, d, got, want, disasm(p.Filter))
			}
		}
	}
}

var randomNames = []string{"read", "write", "getpid", "personality", "ioctl", "mmap", "socket", "_llseek", "rt_sigaction", "fork", "clone3"}

func randomAction(rng *rand.Rand) (specs.LinuxSeccompAction, *uint) {
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActErrno, specs.ActKill, specs.ActKillProcess,
		specs.ActTrap, specs.ActTrace, specs.ActLog, specs.ActNotify, specs.ActKillThread}
	a := acts[rng.IntN(len(acts))]
	if (a == specs.ActErrno || a == specs.ActTrace) && rng.IntN(2) == 0 {
		return a, uintp(uint(rng.IntN(3)))
	}
	return a, nil
}

func randomProfile(rng *rand.Rand) (*specs.LinuxSeccomp, specs.Arch) {
	s := &specs.LinuxSeccomp{}
	s.DefaultAction, s.DefaultErrnoRet = randomAction(rng)
	natives := []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64}
	native := natives[rng.IntN(2)]
	for _, a := range []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM} {
		if rng.IntN(2) == 0 {
			s.Architectures = append(s.Architectures, a)
		}
	}
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	for r := rng.IntN(12); r > 0; r-- {
		sc := specs.LinuxSyscall{}
		for k := 1 + rng.IntN(3); k > 0; k-- {
			sc.Names = append(sc.Names, randomNames[rng.IntN(len(randomNames))])
		}
		sc.Action, sc.ErrnoRet = randomAction(rng)
		for k := rng.IntN(4); k > 0; k-- {
			sc.Args = append(sc.Args, specs.LinuxSeccompArg{
				Index: uint(rng.IntN(3)), Op: ops[rng.IntN(len(ops))],
				Value: boundary[rng.IntN(len(boundary))], ValueTwo: boundary[rng.IntN(len(boundary))],
			})
		}
		s.Syscalls = append(s.Syscalls, sc)
	}
	return s, native
}

func randomData(rng *rand.Rand, s *specs.LinuxSeccomp, native specs.Arch) seccompData {
	infos := []*archInfo{archX86_64, archX86, archX32, archAARCH64, archARM}
	a := infos[rng.IntN(len(infos))]
	d := seccompData{arch: map[*archInfo]uint32{archX86_64: auditX8664, archX32: auditX8664, archX86: auditI386,
		archAARCH64: auditArm64, archARM: auditArm}[a]}
	if rng.IntN(20) == 0 {
		d.arch = rng.Uint32()
	}
	if n, ok := lookupSyscall(a.table, randomNames[rng.IntN(len(randomNames))]); ok && rng.IntN(5) != 0 {
		d.nr = n
	} else {
		d.nr = rng.Uint32() >> rng.IntN(32)
	}
	for i := range d.args {
		v := boundary[rng.IntN(len(boundary))]
		d.args[i] = v + uint64(rng.IntN(3)) - 1
	}
	return d
}
