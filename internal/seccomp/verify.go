//go:build linux

package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// seccompDataSize is sizeof(struct seccomp_data).
const seccompDataSize = 64

// verify checks what the kernel's seccomp_check_filter and bpf_check_classic would reject, restricted to
// the instructions the compiler emits, so that a compiler bug surfaces as an error from Compile instead
// of an EINVAL (or worse, a wrong filter that loads) at container start.
func verify(f []unix.SockFilter) error {
	if len(f) == 0 || len(f) > MaxInstructions {
		return fmt.Errorf("%d instructions, want 1 to %d", len(f), MaxInstructions)
	}
	for pc, ins := range f {
		switch ins.Code {
		case opLdAbsW:
			if ins.K >= seccompDataSize || ins.K%4 != 0 {
				return fmt.Errorf("%d: load of seccomp_data offset %d", pc, ins.K)
			}
		case opAndK, opRetK:
		case opJa:
			if uint64(pc)+1+uint64(ins.K) >= uint64(len(f)) {
				return fmt.Errorf("%d: ja %d leaves the program", pc, ins.K)
			}
		case opJeqK, opJgtK, opJgeK:
			if pc+1+int(ins.Jt) >= len(f) || pc+1+int(ins.Jf) >= len(f) {
				return fmt.Errorf("%d: jump (%d, %d) leaves the program", pc, ins.Jt, ins.Jf)
			}
		default:
			return fmt.Errorf("%d: unexpected opcode %#x", pc, ins.Code)
		}
	}
	// Jumps only go forward, so every path ends at a RET if the last instruction is one.
	if f[len(f)-1].Code != opRetK {
		return fmt.Errorf("last instruction is %#x, not a RET", f[len(f)-1].Code)
	}
	return nil
}
