//go:build linux

package seccomp

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompData mirrors struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d *seccompData) bytes() []byte {
	b := make([]byte, seccompDataSize)
	binary.LittleEndian.PutUint32(b[0:], d.nr)
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// runBPF is a classic BPF interpreter with the seccomp rules for loads (32-bit, aligned, inside
// seccomp_data). It is independent of the compiler's own opcode constants on purpose: it decodes the
// fields as the kernel does.
func runBPF(prog []unix.SockFilter, d seccompData) (uint32, error) {
	data := d.bytes()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		class := ins.Code & 0x07
		switch class {
		case unix.BPF_LD, unix.BPF_LDX:
			var v uint32
			switch ins.Code & 0xe0 {
			case unix.BPF_ABS:
				if class != unix.BPF_LD || ins.Code&0x18 != unix.BPF_W {
					return 0, fmt.Errorf("pc %d: only 32-bit absolute loads are allowed", pc)
				}
				if ins.K%4 != 0 || ins.K+4 > seccompDataSize {
					return 0, fmt.Errorf("pc %d: load at %d", pc, ins.K)
				}
				v = binary.LittleEndian.Uint32(data[ins.K:])
			case unix.BPF_IMM:
				v = ins.K
			case unix.BPF_MEM:
				if ins.K >= 16 {
					return 0, fmt.Errorf("pc %d: M[%d]", pc, ins.K)
				}
				v = mem[ins.K]
			case unix.BPF_LEN:
				v = seccompDataSize
			default:
				return 0, fmt.Errorf("pc %d: unsupported load %#x", pc, ins.Code)
			}
			if class == unix.BPF_LD {
				a = v
			} else {
				x = v
			}
		case unix.BPF_ST, unix.BPF_STX:
			if ins.K >= 16 {
				return 0, fmt.Errorf("pc %d: M[%d]", pc, ins.K)
			}
			if class == unix.BPF_ST {
				mem[ins.K] = a
			} else {
				mem[ins.K] = x
			}
		case unix.BPF_ALU:
			src := ins.K
			if ins.Code&0x08 == unix.BPF_X {
				src = x
			}
			switch ins.Code & 0xf0 {
			case unix.BPF_ADD:
				a += src
			case unix.BPF_SUB:
				a -= src
			case unix.BPF_MUL:
				a *= src
			case unix.BPF_DIV:
				if src == 0 {
					return 0, nil
				}
				a /= src
			case unix.BPF_MOD:
				if src == 0 {
					return 0, nil
				}
				a %= src
			case unix.BPF_OR:
				a |= src
			case unix.BPF_AND:
				a &= src
			case unix.BPF_XOR:
				a ^= src
			case unix.BPF_LSH:
				a <<= src & 31
			case unix.BPF_RSH:
				a >>= src & 31
			case unix.BPF_NEG:
				a = -a
			default:
				return 0, fmt.Errorf("pc %d: unsupported alu %#x", pc, ins.Code)
			}
		case unix.BPF_JMP:
			if ins.Code&0xf0 == unix.BPF_JA {
				pc += int(ins.K)
				break
			}
			src := ins.K
			if ins.Code&0x08 == unix.BPF_X {
				src = x
			}
			var cond bool
			switch ins.Code & 0xf0 {
			case unix.BPF_JEQ:
				cond = a == src
			case unix.BPF_JGT:
				cond = a > src
			case unix.BPF_JGE:
				cond = a >= src
			case unix.BPF_JSET:
				cond = a&src != 0
			default:
				return 0, fmt.Errorf("pc %d: unsupported jump %#x", pc, ins.Code)
			}
			if cond {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case unix.BPF_RET:
			switch ins.Code & 0x18 {
			case unix.BPF_K:
				return ins.K, nil
			case 0x10: // BPF_A
				return a, nil
			}
			return 0, fmt.Errorf("pc %d: unsupported ret %#x", pc, ins.Code)
		case unix.BPF_MISC:
			if ins.Code&0xf8 == unix.BPF_TAX {
				x = a
			} else {
				a = x
			}
		}
	}
	return 0, fmt.Errorf("fell off the end of the program")
}

// disasm renders a program for failure messages.
func disasm(prog []unix.SockFilter) string {
	var b strings.Builder
	for pc, ins := range prog {
		fmt.Fprintf(&b, "%4d: ", pc)
		switch ins.Code {
		case opLdAbsW:
			fmt.Fprintf(&b, "ld [%d]", ins.K)
		case opAndK:
			fmt.Fprintf(&b, "and %#x", ins.K)
		case opJa:
			fmt.Fprintf(&b, "ja %d", pc+1+int(ins.K))
		case opJeqK, opJgtK, opJgeK:
			name := map[uint16]string{opJeqK: "jeq", opJgtK: "jgt", opJgeK: "jge"}[ins.Code]
			fmt.Fprintf(&b, "%s %#x, %d, %d", name, ins.K, pc+1+int(ins.Jt), pc+1+int(ins.Jf))
		case opRetK:
			fmt.Fprintf(&b, "ret %#x", ins.K)
		default:
			fmt.Fprintf(&b, "%#x %d %d %#x", ins.Code, ins.Jt, ins.Jf, ins.K)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// oracle states the decision the filter must take, straight from the semantics documented on Compile,
// with plain 64-bit (or, for 32-bit ABIs, low-word) arithmetic and none of the compiler's code. The
// profile must be valid.
func oracle(s *specs.LinuxSeccomp, native specs.Arch, d seccompData) uint32 {
	retOf := func(act specs.LinuxSeccompAction, errno *uint) uint32 {
		base := map[specs.LinuxSeccompAction]uint32{
			specs.ActKill: 0, specs.ActKillThread: 0, specs.ActKillProcess: 0x80000000,
			specs.ActTrap: 0x00030000, specs.ActErrno: 0x00050000, specs.ActTrace: 0x7ff00000,
			specs.ActAllow: 0x7fff0000, specs.ActLog: 0x7ffc0000, specs.ActNotify: 0x7fc00000,
		}[act]
		if act == specs.ActErrno || act == specs.ActTrace {
			if errno != nil {
				return base | uint32(*errno)
			}
			return base | 1
		}
		return base
	}
	listed := map[specs.Arch]bool{native: true}
	for _, a := range s.Architectures {
		listed[a] = true
	}
	var arch specs.Arch
	switch d.arch {
	case unix.AUDIT_ARCH_X86_64:
		arch = specs.ArchX86_64
		if d.nr >= 0x40000000 {
			arch = specs.ArchX32
		}
	case unix.AUDIT_ARCH_I386:
		arch = specs.ArchX86
	case unix.AUDIT_ARCH_AARCH64:
		arch = specs.ArchAARCH64
	case unix.AUDIT_ARCH_ARM:
		arch = specs.ArchARM
	}
	if arch == "" || !listed[arch] {
		return 0 // SECCOMP_RET_KILL_THREAD
	}
	info := knownArchs[arch]
	narrow := arch == specs.ArchX86 || arch == specs.ArchARM || arch == specs.ArchX32

	def := retOf(s.DefaultAction, s.DefaultErrnoRet)
	type alt []specs.LinuxSeccompArg
	type entry struct {
		alts []alt
		ret  uint32
	}
	var entries []entry
	for _, sc := range s.Syscalls {
		ret := retOf(sc.Action, sc.ErrnoRet)
		if ret == def {
			continue
		}
		hit := false
		for _, n := range sc.Names {
			if nr, ok := lookupSyscall(info.table, n); ok && nr == d.nr {
				hit = true
			}
		}
		if !hit {
			continue
		}
		e := entry{ret: ret}
		seen := map[uint]bool{}
		split := false
		for _, a := range sc.Args {
			split = split || seen[a.Index]
			seen[a.Index] = true
		}
		if split {
			for _, a := range sc.Args {
				e.alts = append(e.alts, alt{a})
			}
		} else {
			e.alts = []alt{sc.Args}
		}
		// The same syscall named twice in one entry is still one rule.
		entries = append(entries, e)
	}

	max := uint64(1<<64 - 1)
	if narrow {
		max = 1<<32 - 1
	}
	tautology := func(a specs.LinuxSeccompArg) bool {
		v := a.Value & max
		switch a.Op {
		case specs.OpGreaterEqual:
			return v == 0
		case specs.OpLessEqual:
			return v == max
		case specs.OpMaskedEqual:
			return v == 0
		}
		return false
	}
	holds := func(a specs.LinuxSeccompArg) bool {
		x, v := d.args[a.Index]&max, a.Value&max
		switch a.Op {
		case specs.OpEqualTo:
			return x == v
		case specs.OpNotEqual:
			return x != v
		case specs.OpLessThan:
			return x < v
		case specs.OpLessEqual:
			return x <= v
		case specs.OpGreaterThan:
			return x > v
		case specs.OpGreaterEqual:
			return x >= v
		case specs.OpMaskedEqual:
			return x&v == a.ValueTwo&v
		}
		panic("bad op " + a.Op)
	}
	for _, e := range entries {
		for _, al := range e.alts {
			all := true
			for _, a := range al {
				all = all && tautology(a)
			}
			if all {
				return e.ret
			}
		}
	}
	for _, e := range entries {
		for _, al := range e.alts {
			all := true
			for _, a := range al {
				all = all && holds(a)
			}
			if all {
				return e.ret
			}
		}
	}
	return def
}

type sockFilter = unix.SockFilter
