//go:build linux

package seccomp

import (
	"strings"
	"testing"
)

func TestAssemblerFarJumps(t *testing.T) {
	a := &assembler{}
	far1, chainB, chainC, retD := a.newLabel(), a.newLabel(), a.newLabel(), a.newLabel()
	n1, n2 := a.newLabel(), a.newLabel()
	a.ldAbs(offNr)
	a.jump(opJeqK, 1, far1, n1) // far RET on true
	a.bind(n1)
	a.jump(opJeqK, 2, n2, chainB) // far non-RET on false
	a.bind(n2)
	a.jump(opJgtK, 1, chainC, retD) // both far
	for i := 0; i < 300; i++ {
		a.and(0xffffffff)
	}
	a.ret(0x5005)
	a.bind(far1)
	a.ret(0x1001)
	a.bind(chainB)
	a.ldAbs(offNr)
	a.ret(0x2002)
	a.bind(chainC)
	a.ldAbs(offArch)
	a.ret(0x3003)
	a.bind(retD)
	a.ret(0x4004)
	prog, err := a.assemble()
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(prog); err != nil {
		t.Fatalf("%v\n%s", err, disasm(prog))
	}
	for nr, want := range map[uint32]uint32{1: 0x1001, 5: 0x2002, 2: 0x3003} {
		got, err := runBPF(prog, seccompData{nr: nr})
		if err != nil || got != want {
			t.Errorf("nr %d: got %#x, %v, want %#x\n%s", nr, got, err, want, disasm(prog))
		}
	}
	// Four trampolines: two RET copies (0x1001, 0x4004) and two JAs (to B and C), all before the padding.
	head := disasm(prog[:10])
	for _, want := range []string{"ret 0x1001", "ret 0x4004", "ja "} {
		if !strings.Contains(head, want) {
			t.Errorf("no %q among the first instructions:\n%s", want, head)
		}
	}
	if len(prog) != 1+3+4+300+1+1+2+2+1 {
		t.Errorf("program has %d instructions\n%s", len(prog), disasm(prog))
	}
}

func TestAssemblerErrors(t *testing.T) {
	a := &assembler{}
	l := a.newLabel()
	a.ja(l)
	a.ret(0)
	if _, err := a.assemble(); err == nil || !strings.Contains(err.Error(), "never bound") {
		t.Errorf("unbound label: %v", err)
	}

	a = &assembler{}
	l = a.newLabel()
	a.bind(l)
	a.ret(0)
	a.ja(l)
	if _, err := a.assemble(); err == nil || !strings.Contains(err.Error(), "backward") {
		t.Errorf("backward jump: %v", err)
	}

	a = &assembler{}
	l = a.newLabel()
	a.ret(0)
	a.bind(l)
	if _, err := a.assemble(); err == nil {
		t.Errorf("label at the end: no error")
	}
}

func TestVerify(t *testing.T) {
	a := &assembler{}
	a.ldAbs(offNr)
	a.ret(0)
	good, err := a.assemble()
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(good); err != nil {
		t.Fatal(err)
	}
	bad := func(edit func(p []sockFilter) []sockFilter) {
		t.Helper()
		p := edit(append([]sockFilter(nil), good...))
		if err := verify(p); err == nil {
			t.Errorf("verify accepted %v", p)
		}
	}
	bad(func(p []sockFilter) []sockFilter { return nil })
	bad(func(p []sockFilter) []sockFilter { p[0].K = 2; return p })
	bad(func(p []sockFilter) []sockFilter { p[0].K = 64; return p })
	bad(func(p []sockFilter) []sockFilter { p[1].Code = opLdAbsW; return p })
	bad(func(p []sockFilter) []sockFilter { p[0] = sockFilter{Code: opJeqK, Jt: 1}; return p })
	bad(func(p []sockFilter) []sockFilter { p[0] = sockFilter{Code: opJa, K: 1}; return p })
	bad(func(p []sockFilter) []sockFilter { p[0].Code = 0x07; return p })
	bad(func(p []sockFilter) []sockFilter { return make([]sockFilter, MaxInstructions+1) })
}
