//go:build linux

package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Classic BPF opcodes used by the compiler (linux/filter.h, linux/bpf_common.h).
const (
	opLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJa     = unix.BPF_JMP | unix.BPF_JA
	opJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgtK   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opRetK   = unix.BPF_RET | unix.BPF_K
)

// label names a position in the program; it may be used before it is bound.
type label int32

type itemKind uint8

const (
	itemBind itemKind = iota // binds label `to` to the next instruction
	itemStmt                 // a non-jump instruction
	itemJump                 // a conditional jump to jt/jf
	itemJa                   // an unconditional jump to `to`
)

type item struct {
	kind   itemKind
	code   uint16
	k      uint32
	jt, jf label
	to     label
	// farT/farF: the target is more than 255 instructions away, which a conditional jump's 8-bit offset
	// cannot reach, so a trampoline follows the jump.
	farT, farF bool
}

// assembler turns a list of instructions with symbolic, forward-only jump targets into cBPF. It exists so
// the code generator never computes an offset by hand: every out-of-range conditional jump gets a
// trampoline, and when the target is a RET the trampoline is a copy of that RET (same size as a JA and one
// jump less at run time).
type assembler struct {
	items   []item
	nlabels int
}

func (a *assembler) newLabel() label {
	a.nlabels++
	return label(a.nlabels - 1)
}

func (a *assembler) bind(l label) { a.items = append(a.items, item{kind: itemBind, to: l}) }

func (a *assembler) ldAbs(off uint32) {
	a.items = append(a.items, item{kind: itemStmt, code: opLdAbsW, k: off})
}

func (a *assembler) and(k uint32) {
	a.items = append(a.items, item{kind: itemStmt, code: opAndK, k: k})
}

func (a *assembler) ret(k uint32) {
	a.items = append(a.items, item{kind: itemStmt, code: opRetK, k: k})
}

func (a *assembler) ja(to label) { a.items = append(a.items, item{kind: itemJa, code: opJa, to: to}) }

func (a *assembler) jump(code uint16, k uint32, jt, jf label) {
	a.items = append(a.items, item{kind: itemJump, code: code, k: k, jt: jt, jf: jf})
}

func (it *item) size() int {
	switch it.kind {
	case itemBind:
		return 0
	case itemJump:
		n := 1
		if it.farT {
			n++
		}
		if it.farF {
			n++
		}
		return n
	}
	return 1
}

// assemble resolves labels. Because every jump goes forward, one backward pass settles everything: when
// a jump is reached, all code after it (its targets included) has its final size, so whether it needs
// trampolines is known exactly, and the sizes of earlier code cannot change it.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	bound := make([]bool, a.nlabels)
	for _, it := range a.items {
		if it.kind == itemBind {
			if bound[it.to] {
				return nil, fmt.Errorf("label %d bound twice", it.to)
			}
			bound[it.to] = true
		}
	}

	// dist[l]: instructions from label l to the end. first[l]: item index of the instruction at l.
	dist := make([]int, a.nlabels)
	first := make([]int, a.nlabels)
	seen := make([]bool, a.nlabels)
	target := func(l label) (int, error) {
		switch {
		case l < 0 || int(l) >= a.nlabels || !bound[l]:
			return 0, fmt.Errorf("label %d never bound", l)
		case !seen[l]:
			return 0, fmt.Errorf("backward jump to label %d", l)
		}
		return dist[l], nil
	}
	after, next := 0, -1
	for i := len(a.items) - 1; i >= 0; i-- {
		it := &a.items[i]
		switch it.kind {
		case itemBind:
			if next < 0 {
				return nil, fmt.Errorf("label %d bound at the end of the program", it.to)
			}
			dist[it.to], first[it.to], seen[it.to] = after, next, true
			continue
		case itemJa:
			if _, err := target(it.to); err != nil {
				return nil, err
			}
		case itemJump:
			dt, err := target(it.jt)
			if err != nil {
				return nil, err
			}
			df, err := target(it.jf)
			if err != nil {
				return nil, err
			}
			// Offsets count from the instruction after the jump, i.e. across its own trampolines.
			offT, offF := after-dt, after-df
			tramps := 0
			for changed := true; changed; {
				changed = false
				if !it.farT && offT+tramps > 255 {
					it.farT, changed = true, true
					tramps++
				}
				if !it.farF && offF+tramps > 255 {
					it.farF, changed = true, true
					tramps++
				}
			}
		}
		after += it.size()
		next = i
	}

	total := after
	out := make([]unix.SockFilter, 0, total)
	pos := func(l label) int { return total - dist[l] }
	// trampoline emits, at the current pc, a way to reach l.
	trampoline := func(l label) {
		if t := a.items[first[l]]; t.kind == itemStmt && t.code == opRetK {
			out = append(out, unix.SockFilter{Code: opRetK, K: t.k})
			return
		}
		out = append(out, unix.SockFilter{Code: opJa, K: uint32(pos(l) - (len(out) + 1))})
	}
	for i := range a.items {
		it := &a.items[i]
		switch it.kind {
		case itemStmt:
			out = append(out, unix.SockFilter{Code: it.code, K: it.k})
		case itemJa:
			out = append(out, unix.SockFilter{Code: it.code, K: uint32(pos(it.to) - (len(out) + 1))})
		case itemJump:
			pc := len(out)
			jt, jf := pos(it.jt)-(pc+1), pos(it.jf)-(pc+1)
			if it.farT {
				jt = 0
			}
			if it.farF {
				jf = 0
				if it.farT {
					jf = 1
				}
			}
			if jt < 0 || jf < 0 || jt > 255 || jf > 255 {
				return nil, fmt.Errorf("jump at %d out of range (%d, %d)", pc, jt, jf)
			}
			out = append(out, unix.SockFilter{Code: it.code, Jt: uint8(jt), Jf: uint8(jf), K: it.k})
			if it.farT {
				trampoline(it.jt)
			}
			if it.farF {
				trampoline(it.jf)
			}
		}
	}
	if len(out) != total {
		return nil, fmt.Errorf("emitted %d instructions, planned %d", len(out), total)
	}
	return out, nil
}
