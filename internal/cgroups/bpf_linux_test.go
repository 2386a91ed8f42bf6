package cgroups

import (
	"fmt"
	"math/rand/v2"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runFilter interprets the instruction subset deviceFilter emits, with the checks the
// kernel's verifier would make for it (forward jumps in range, registers written before
// they are read, r0 set at exit), so the program's logic is tested without root.
func runFilter(t *testing.T, prog []bpfInsn, devType, major, minor uint32, access uint32) bool {
	t.Helper()
	var reg [11]uint64
	var init [11]bool
	init[r1] = true
	ctx := [3]uint32{access<<16 | devType, major, minor}
	read := func(r uint8) uint64 {
		if !init[r] {
			t.Fatalf("register r%d read before written", r)
		}
		return reg[r]
	}
	write := func(r uint8, v uint64) { reg[r], init[r] = v, true }
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		dst, src := in.regs&0xf, in.regs>>4
		if !littleEndian {
			dst, src = in.regs>>4, in.regs&0xf
		}
		jump := func(cond bool) {
			if in.off < 0 || pc+1+int(in.off) >= len(prog) {
				t.Fatalf("pc %d: jump offset %d out of range", pc, in.off)
			}
			if cond {
				pc += int(in.off)
			}
		}
		switch in.code {
		case opLdxW:
			if src != r1 || in.off%4 != 0 || in.off < 0 || in.off > 8 {
				t.Fatalf("pc %d: bad context load r%d+%d", pc, src, in.off)
			}
			write(dst, uint64(ctx[in.off/4]))
		case opMov32X:
			write(dst, uint64(uint32(read(src))))
		case opAnd32K:
			write(dst, uint64(uint32(read(dst))&uint32(in.imm)))
		case opRsh32K:
			write(dst, uint64(uint32(read(dst))>>uint32(in.imm)))
		case opMov64K:
			write(dst, uint64(int64(in.imm)))
		case opJne32K:
			jump(uint32(read(dst)) != uint32(in.imm))
		case opJeq32K:
			jump(uint32(read(dst)) == uint32(in.imm))
		case opExit:
			return read(r0) == 1
		default:
			t.Fatalf("pc %d: unexpected opcode %#x", pc, in.code)
		}
	}
	t.Fatal("fell off the end of the program")
	return false
}

// allowedByRules is the reference meaning: each requested access bit is decided by the last
// rule that matches the device and names the bit; a bit no rule names is allowed.
func allowedByRules(rules []devRule, devType, major, minor uint32, access uint8) bool {
	for bit := uint8(1); bit <= 4; bit <<= 1 {
		if access&bit == 0 {
			continue
		}
		for i := len(rules) - 1; i >= 0; i-- {
			r := rules[i]
			typeOK := r.typ == 'a' || (r.typ == 'b' && devType == unix.BPF_DEVCG_DEV_BLOCK) || (r.typ == 'c' && devType == unix.BPF_DEVCG_DEV_CHAR)
			if typeOK && (r.major < 0 || uint32(r.major) == major) && (r.minor < 0 || uint32(r.minor) == minor) && r.access&bit != 0 {
				if !r.allow {
					return false
				}
				break
			}
		}
	}
	return true
}

func TestDeviceFilterExamples(t *testing.T) {
	t.Parallel()
	const (
		c = unix.BPF_DEVCG_DEV_CHAR
		b = unix.BPF_DEVCG_DEV_BLOCK
		r = unix.BPF_DEVCG_ACC_READ
		w = unix.BPF_DEVCG_ACC_WRITE
		m = unix.BPF_DEVCG_ACC_MKNOD
	)
	// The runtime's usual list: deny all, then the standard devices.
	rules, err := deviceRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // /dev/null
		{Allow: true, Type: "c", Major: i64(136), Access: "rw"},               // ptys
		{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"},  // later: no writes to null
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},   // read /dev/zero
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "w"},   // and write it, separately
		{Allow: true, Type: "b", Major: i64(4294967295), Minor: i64(0), Access: "r"},
	})
	if err != nil {
		t.Fatal(err)
	}
	prog := deviceFilter(rules)
	for _, tc := range []struct {
		typ, major, minor, access uint32
		want                      bool
	}{
		{c, 1, 3, r, true},
		{c, 1, 3, m, true},
		{c, 1, 3, w, false},
		{c, 1, 3, r | w, false},
		{b, 1, 3, r, false},
		{c, 136, 7, r | w, true},
		{c, 136, 7, m, false},
		{c, 1, 5, r | w, true}, // read and write granted by two rules
		{c, 1, 5, m, false},
		{c, 1, 8, r, false},
		{b, 4294967295, 0, r, true}, // major above 2^31 compares as u32
		{b, 4294967295, 0, w, false},
	} {
		if got := runFilter(t, prog, tc.typ, tc.major, tc.minor, tc.access); got != tc.want {
			t.Errorf("type %d %d:%d access %d: allowed = %v, want %v", tc.typ, tc.major, tc.minor, tc.access, got, tc.want)
		}
	}
	// No rules at all: everything allowed, as in a cgroup without a filter.
	if !runFilter(t, deviceFilter(nil), c, 1, 1, r|w|m) {
		t.Error("empty list denies")
	}
}

func TestDeviceFilterMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	types := []byte{'a', 'b', 'c'}
	nums := []int64{-1, 1, 5}
	for iter := range 2000 {
		rules := make([]devRule, rng.IntN(8))
		for i := range rules {
			rules[i] = devRule{
				allow:  rng.IntN(2) == 0,
				typ:    types[rng.IntN(3)],
				major:  nums[rng.IntN(3)],
				minor:  nums[rng.IntN(3)],
				access: uint8(1 + rng.IntN(7)),
			}
		}
		prog := deviceFilter(rules)
		for _, typ := range []uint32{unix.BPF_DEVCG_DEV_BLOCK, unix.BPF_DEVCG_DEV_CHAR} {
			for _, major := range []uint32{1, 5, 9} {
				for _, minor := range []uint32{1, 5, 9} {
					for access := uint32(1); access <= 7; access++ {
						got := runFilter(t, prog, typ, major, minor, access)
						want := allowedByRules(rules, typ, major, minor, uint8(access))
						if got != want {
							t.Fatalf("iteration %d rules %s: type %d %d:%d access %d: program %v, reference %v",
								iter, fmt.Sprint(rules), typ, major, minor, access, got, want)
						}
					}
				}
			}
		}
	}
}

func TestDeviceRulesV1Lines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   specs.LinuxDeviceCgroup
		want []string
	}{
		{specs.LinuxDeviceCgroup{}, []string{"a"}},
		{specs.LinuxDeviceCgroup{Type: "a", Access: "mrw"}, []string{"a"}},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, []string{"c 1:3 rwm"}},
		{specs.LinuxDeviceCgroup{Type: "b", Major: i64(8), Access: "r"}, []string{"b 8:* r"}},
		{specs.LinuxDeviceCgroup{Type: "c", Minor: i64(-1), Major: i64(-1), Access: "m"}, []string{"c *:* m"}},
		// A narrower type-a rule would be read by the kernel as "everything".
		{specs.LinuxDeviceCgroup{Type: "a", Access: "r"}, []string{"b *:* r", "c *:* r"}},
	} {
		rs, err := deviceRules([]specs.LinuxDeviceCgroup{tc.in})
		if err != nil {
			t.Fatal(err)
		}
		if got := rs[0].v1Lines(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []specs.LinuxDeviceCgroup{{Type: "p"}, {Access: "x"}, {Major: i64(-2)}, {Minor: i64(1 << 40)}} {
		if _, err := deviceRules([]specs.LinuxDeviceCgroup{bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
