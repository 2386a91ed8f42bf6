//go:build linux

package seccomp

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data. The hosts we support are little-endian, so the low word of args[i]
// comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// check is a condition lowered for one architecture: values truncated for 32-bit ABIs, MASKED_EQ's datum
// already masked (libseccomp compares (arg & mask) == (datum & mask)).
type check struct {
	index uint
	op    specs.LinuxSeccompOperator
	v     uint64
	mask  uint64 // MASKED_EQ only
}

type verdict int

const (
	depends verdict = iota
	always
	never
)

// lower turns a profile condition into a check for an architecture, and folds the comparisons whose
// result does not depend on the argument, so that they cost no instructions.
func lower(c cond, args32 bool) (check, verdict) {
	max := uint64(math.MaxUint64)
	v := c.value
	if args32 {
		max = math.MaxUint32
		v &= max
	}
	ch := check{index: c.index, op: c.op, v: v}
	switch c.op {
	case specs.OpMaskedEqual:
		ch.mask = v
		ch.v = c.valueTwo & ch.mask
		if ch.mask == 0 {
			return ch, always
		}
	case specs.OpGreaterEqual:
		if v == 0 {
			return ch, always
		}
	case specs.OpLessThan:
		if v == 0 {
			return ch, never
		}
	case specs.OpLessEqual:
		if v == max {
			return ch, always
		}
	case specs.OpGreaterThan:
		if v == max {
			return ch, never
		}
	}
	return ch, depends
}

// condRule is a conditional rule of one syscall on one architecture: all checks must hold.
type condRule struct {
	checks []check
	ret    uint32
}

// decision is what the filter does for one syscall number that does not simply take the default action.
type decision struct {
	uncond bool
	ret    uint32     // when uncond
	rules  []condRule // otherwise, tried in order; no match means the default action
}

// decide applies the rule semantics documented on Compile to one architecture.
func decide(p *profile, a *archInfo) map[uint32]*decision {
	decs := make(map[uint32]*decision, len(a.table))
	for _, r := range p.rules {
		if r.ret == p.defRet {
			continue
		}
		// A rule's alternatives are lowered once per architecture, not once per name.
		var lowered []condRule
		uncond := false
		for _, alt := range r.alts {
			cr := condRule{ret: r.ret}
			v := always
			for _, c := range alt {
				ch, cv := lower(c, a.args32)
				if cv == never {
					v = never
					break
				}
				if cv == depends {
					v = depends
					cr.checks = append(cr.checks, ch)
				}
			}
			if v == always {
				uncond = true
				break
			}
			if v == depends {
				lowered = append(lowered, cr)
			}
		}
		for _, name := range r.names {
			nr, ok := a.nr(name)
			if !ok {
				continue
			}
			d := decs[nr]
			if d == nil {
				d = &decision{}
				decs[nr] = d
			}
			switch {
			case d.uncond:
			case uncond:
				d.uncond, d.ret, d.rules = true, r.ret, nil
			default:
				d.rules = append(d.rules, lowered...)
			}
		}
	}
	for nr, d := range decs {
		if !d.uncond && len(d.rules) == 0 {
			delete(decs, nr)
		}
	}
	return decs
}

// chain is the code for a conditional decision; syscalls with identical rules share one.
type chain struct {
	lbl    label
	args32 bool
	rules  []condRule
}

// section generates one audit-arch group: x86_64 and x32 share AUDIT_ARCH_X86_64 and one section.
type section struct {
	a      *assembler
	defRet uint32
	rets   map[uint32]label
	chains map[string]*chain
	order  []*chain
}

func (s *section) retLabel(ret uint32) label {
	l, ok := s.rets[ret]
	if !ok {
		l = s.a.newLabel()
		s.rets[ret] = l
	}
	return l
}

func (s *section) chainLabel(args32 bool, rules []condRule) label {
	var b strings.Builder
	fmt.Fprintf(&b, "%t", args32)
	for _, r := range rules {
		fmt.Fprintf(&b, "|%x", r.ret)
		for _, c := range r.checks {
			fmt.Fprintf(&b, ";%d %s %x %x", c.index, c.op, c.v, c.mask)
		}
	}
	key := b.String()
	c, ok := s.chains[key]
	if !ok {
		c = &chain{lbl: s.a.newLabel(), args32: args32, rules: rules}
		s.chains[key] = c
		s.order = append(s.order, c)
	}
	return c.lbl
}

// interval says that syscall numbers from start up to the next interval's start go to target.
type interval struct {
	start  uint32
	target label
}

// intervals maps the whole 32-bit number space to decisions, merging neighbours with the same target, so
// a dense allow-list collapses into a handful of ranges.
func (s *section) intervals(a *archInfo, decs map[uint32]*decision) []interval {
	nrs := make([]uint32, 0, len(decs))
	for nr := range decs {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	def := s.retLabel(s.defRet)
	var ivs []interval
	add := func(start uint32, t label) {
		n := len(ivs)
		switch {
		case n > 0 && ivs[n-1].target == t:
		case n > 0 && ivs[n-1].start == start:
			ivs[n-1].target = t
			if n > 1 && ivs[n-2].target == t {
				ivs = ivs[:n-1]
			}
		default:
			ivs = append(ivs, interval{start, t})
		}
	}
	add(0, def)
	next := uint64(0)
	for _, nr := range nrs {
		d := decs[nr]
		var t label
		if d.uncond {
			t = s.retLabel(d.ret)
		} else {
			t = s.chainLabel(a.args32, d.rules)
		}
		if uint64(nr) > next {
			add(uint32(next), def)
		}
		add(nr, t)
		next = uint64(nr) + 1
	}
	if next <= math.MaxUint32 {
		add(uint32(next), def)
	}
	return ivs
}

// entry is the label where the search over ivs starts: the target itself when there is a single range.
func (s *section) entry(ivs []interval) label {
	if len(ivs) == 1 {
		return ivs[0].target
	}
	return s.a.newLabel()
}

// tree emits a balanced binary search over the range starts (A holds the syscall number), so any syscall
// is decided in about log2(ranges) comparisons instead of a linear scan.
func (s *section) tree(ivs []interval, self label) {
	if len(ivs) == 1 {
		return
	}
	mid := len(ivs) / 2
	lo, hi := ivs[:mid], ivs[mid:]
	lt, rt := s.entry(lo), s.entry(hi)
	s.a.bind(self)
	s.a.jump(opJgeK, hi[0].start, rt, lt)
	s.tree(lo, lt)
	s.tree(hi, rt)
}

func (s *section) emitChain(c *chain) {
	a := s.a
	a.bind(c.lbl)
	for i, r := range c.rules {
		fail := s.retLabel(s.defRet)
		var next label = -1
		if i < len(c.rules)-1 {
			next = a.newLabel()
			fail = next
		}
		for _, ch := range r.checks {
			ok := a.newLabel()
			emitCheck(a, ch, c.args32, ok, fail)
			a.bind(ok)
		}
		a.ret(r.ret)
		if next >= 0 {
			a.bind(next)
		}
	}
}

// emitCheck emits code that goes to ok when the check holds and to fail otherwise. 64-bit arguments are
// compared as two 32-bit words, high word first: only when the high words are equal does the low word
// decide, and both word compares are unsigned, as the 64-bit comparison is.
func emitCheck(a *assembler, c check, args32 bool, ok, fail label) {
	lo := uint32(offArgs + 8*c.index)
	hi := lo + 4
	if args32 {
		a.ldAbs(lo)
		v := uint32(c.v)
		switch c.op {
		case specs.OpEqualTo:
			a.jump(opJeqK, v, ok, fail)
		case specs.OpNotEqual:
			a.jump(opJeqK, v, fail, ok)
		case specs.OpGreaterThan:
			a.jump(opJgtK, v, ok, fail)
		case specs.OpGreaterEqual:
			a.jump(opJgeK, v, ok, fail)
		case specs.OpLessThan:
			a.jump(opJgeK, v, fail, ok)
		case specs.OpLessEqual:
			a.jump(opJgtK, v, fail, ok)
		case specs.OpMaskedEqual:
			if m := uint32(c.mask); m != math.MaxUint32 {
				a.and(m)
			}
			a.jump(opJeqK, v, ok, fail)
		}
		return
	}
	vhi, vlo := uint32(c.v>>32), uint32(c.v)
	switch c.op {
	case specs.OpEqualTo, specs.OpNotEqual:
		match, miss := ok, fail
		if c.op == specs.OpNotEqual {
			match, miss = fail, ok
		}
		next := a.newLabel()
		a.ldAbs(hi)
		a.jump(opJeqK, vhi, next, miss)
		a.bind(next)
		a.ldAbs(lo)
		a.jump(opJeqK, vlo, match, miss)
	case specs.OpMaskedEqual:
		mhi, mlo := uint32(c.mask>>32), uint32(c.mask)
		if mhi != 0 {
			next := ok
			if mlo != 0 {
				next = a.newLabel()
			}
			a.ldAbs(hi)
			if mhi != math.MaxUint32 {
				a.and(mhi)
			}
			a.jump(opJeqK, vhi, next, fail)
			if mlo == 0 {
				return
			}
			a.bind(next)
		}
		a.ldAbs(lo)
		if mlo != math.MaxUint32 {
			a.and(mlo)
		}
		a.jump(opJeqK, vlo, ok, fail)
	default:
		// Where the argument's high word is above or below the value's, the answer is known.
		above, below := ok, fail
		if c.op == specs.OpLessThan || c.op == specs.OpLessEqual {
			above, below = fail, ok
		}
		next := a.newLabel()
		a.ldAbs(hi)
		switch vhi {
		case 0: // nothing is below 0
			a.jump(opJgtK, 0, above, next)
		case math.MaxUint32: // nothing is above the maximum
			a.jump(opJeqK, vhi, next, below)
		default:
			eq := a.newLabel()
			a.jump(opJgtK, vhi, above, eq)
			a.bind(eq)
			a.jump(opJeqK, vhi, next, below)
		}
		a.bind(next)
		a.ldAbs(lo)
		switch c.op {
		case specs.OpGreaterThan:
			a.jump(opJgtK, vlo, ok, fail)
		case specs.OpGreaterEqual:
			a.jump(opJgeK, vlo, ok, fail)
		case specs.OpLessThan:
			a.jump(opJgeK, vlo, fail, ok)
		case specs.OpLessEqual:
			a.jump(opJgtK, vlo, fail, ok)
		}
	}
}

// group is the set of architectures that share one seccomp_data.arch value.
type group struct {
	audit uint32
	main  *archInfo // the non-x32 architecture, if listed
	x32   *archInfo
}

// generate lays the program out as:
//
//	load arch; one JEQ per audit arch; RET bad-arch
//	per audit arch: load nr; [x86_64: split on the x32 bit]; binary search; argument chains; RETs
//
// Every jump is forward, as cBPF requires.
func generate(p *profile) ([]unix.SockFilter, error) {
	var groups []*group
	for _, ai := range p.archs {
		var g *group
		for _, have := range groups {
			if have.audit == ai.audit {
				g = have
			}
		}
		if g == nil {
			g = &group{audit: ai.audit}
			groups = append(groups, g)
		}
		if ai.x32 {
			g.x32 = ai
		} else {
			g.main = ai
		}
	}

	a := &assembler{}
	a.ldAbs(offArch)
	starts := make([]label, len(groups))
	for i, g := range groups {
		starts[i] = a.newLabel()
		next := a.newLabel()
		a.jump(opJeqK, g.audit, starts[i], next)
		a.bind(next)
	}
	a.ret(badArchAction)

	for i, g := range groups {
		s := &section{a: a, defRet: p.defRet, rets: map[uint32]label{}, chains: map[string]*chain{}}
		a.bind(starts[i])
		a.ldAbs(offNr)
		var mainIvs, x32Ivs []interval
		var mainEntry, x32Entry label
		if g.main != nil {
			mainIvs = s.intervals(g.main, decide(p, g.main))
			mainEntry = s.entry(mainIvs)
		}
		if g.x32 != nil {
			x32Ivs = s.intervals(g.x32, decide(p, g.x32))
			x32Entry = s.entry(x32Ivs)
		}
		if g.audit == archX86_64.audit {
			// x32 shares the audit arch: the number's x32 bit is the only way to tell the ABIs apart, and
			// an x86_64 rule must never match an x32 call (or the other way round).
			if g.main == nil {
				mainEntry = s.retLabel(badArchAction)
			}
			if g.x32 == nil {
				x32Entry = s.retLabel(badArchAction)
			}
			a.jump(opJgeK, x32SyscallBit, x32Entry, mainEntry)
		} else if len(mainIvs) == 1 {
			a.ja(mainEntry)
		}
		if len(mainIvs) > 1 {
			s.tree(mainIvs, mainEntry)
		}
		if len(x32Ivs) > 1 {
			s.tree(x32Ivs, x32Entry)
		}
		for _, c := range s.order {
			s.emitChain(c)
		}
		rets := make([]uint32, 0, len(s.rets))
		for r := range s.rets {
			rets = append(rets, r)
		}
		slices.Sort(rets)
		for _, r := range rets {
			a.bind(s.rets[r])
			a.ret(r)
		}
	}
	return a.assemble()
}
