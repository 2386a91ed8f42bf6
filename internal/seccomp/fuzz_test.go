//go:build linux

package seccomp

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCompile feeds JSON profiles to the compiler. Compile must never panic, must reject only with
// ErrInvalidProfile, and every program it returns must fit the kernel, pass the structural verifier and
// agree with the oracle on syscalls and argument values taken from the profile itself.
func FuzzCompile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.LinuxSeccomp
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		for _, native := range []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64} {
			p, err := compile(&s, native)
			if err != nil {
				if !errors.Is(err, ErrInvalidProfile) {
					t.Fatalf("compile for %s: error outside ErrInvalidProfile: %v", native, err)
				}
				continue
			}
			if len(p.Filter) > MaxInstructions {
				t.Fatalf("%d instructions", len(p.Filter))
			}
			if err := verify(p.Filter); err != nil {
				t.Fatalf("verify: %v\n%s", err, disasm(p.Filter))
			}
			checkAgainstOracle(t, &s, native, p)
		}
	})
}

// checkAgainstOracle probes the syscalls the profile names, on every architecture, with argument values
// at and around the profile's own values, where mistakes in word splitting would show.
func checkAgainstOracle(t *testing.T, s *specs.LinuxSeccomp, native specs.Arch, p *Program) {
	var values []uint64
	for _, sc := range s.Syscalls {
		for _, a := range sc.Args {
			values = append(values, a.Value, a.Value-1, a.Value+1, a.ValueTwo, a.Value&a.ValueTwo)
		}
	}
	values = append(values, 0, 0xffffffff, 0x100000000)
	if len(values) > 24 {
		values = values[:24]
	}
	audits := map[*archInfo]uint32{archX86_64: auditX8664, archX32: auditX8664, archX86: auditI386, archAARCH64: auditArm64, archARM: auditArm}
	probes := 0
	for _, sc := range s.Syscalls {
		for _, name := range sc.Names {
			for a, audit := range audits {
				nr, ok := lookupSyscall(a.table, name)
				if !ok {
					continue
				}
				for i, v := range values {
					if probes++; probes > 2000 {
						return
					}
					d := seccompData{nr: nr, arch: audit}
					for j := range d.args {
						d.args[j] = values[(i+j)%len(values)]
					}
					d.args[i%6] = v
					got, err := runBPF(p.Filter, d)
					if err != nil {
						t.Fatalf("bpf: %v", err)
					}
					if want := oracle(s, native, d); got != want {
						t.Fatalf("native %s, %s %s args %#x: got %#x, want %#x\n%s", native, a.name, name, d.args, got, want, disasm(p.Filter))
					}
				}
			}
		}
	}
}
