//go:build linux

package seccomp

import (
	"errors"
	"fmt"
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// MaxInstructions is the kernel's limit on one classic BPF program (BPF_MAXINSNS).
const MaxInstructions = 4096

// badArchAction is returned for a syscall made with an architecture the profile does not list. It is
// libseccomp's default (SCMP_ACT_KILL, i.e. kill the thread), so profiles behave as they do under runc;
// runtimes exec a single-threaded process right after Load, where killing the thread kills the process.
const badArchAction = unix.SECCOMP_RET_KILL_THREAD

// Program is a compiled filter plus what the loader needs to know.
type Program struct {
	Filter []unix.SockFilter
	// Flags holds the SECCOMP_FILTER_FLAG_* bits named by the profile's flags.
	Flags uint
	// Notify is set when some path through Filter returns SECCOMP_RET_USER_NOTIF, so Load must ask the
	// kernel for a listener fd. A NOTIFY rule whose syscalls are all unknown does not set it.
	Notify bool
	// Unknown lists, sorted, the syscall names of the profile that no compiled architecture knows. They
	// were skipped, as runc does (profiles such as moby's name syscalls of other architectures); the
	// runtime may log them.
	Unknown []string
}

// ErrInvalidProfile is the class of every error Compile returns for a profile it cannot accept; test for it
// with errors.Is. The error's text names the offending field.
var ErrInvalidProfile = errors.New("invalid seccomp profile")

// FieldError reports an invalid field of the profile, spelled as a path from the config root, e.g.
// linux.seccomp.syscalls[3].args[0].op.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Unwrap makes errors.Is(err, ErrInvalidProfile) true.
func (e *FieldError) Unwrap() error { return ErrInvalidProfile }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

const fieldRoot = "linux.seccomp"

type actionInfo struct {
	name     specs.LinuxSeccompAction
	ret      uint32
	errnoRet bool // the action carries errnoRet in SECCOMP_RET_DATA
}

var actionTable = []actionInfo{
	{specs.ActKill, unix.SECCOMP_RET_KILL_THREAD, false},
	{specs.ActKillProcess, unix.SECCOMP_RET_KILL_PROCESS, false},
	{specs.ActKillThread, unix.SECCOMP_RET_KILL_THREAD, false},
	{specs.ActTrap, unix.SECCOMP_RET_TRAP, false},
	{specs.ActErrno, unix.SECCOMP_RET_ERRNO, true},
	{specs.ActTrace, unix.SECCOMP_RET_TRACE, true},
	{specs.ActAllow, unix.SECCOMP_RET_ALLOW, false},
	{specs.ActLog, unix.SECCOMP_RET_LOG, false},
	{specs.ActNotify, unix.SECCOMP_RET_USER_NOTIF, false},
}

var operatorTable = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

type flagInfo struct {
	name specs.LinuxSeccompFlag
	bit  uint
}

var flagTable = []flagInfo{
	{"SECCOMP_FILTER_FLAG_TSYNC", unix.SECCOMP_FILTER_FLAG_TSYNC},
	{specs.LinuxSeccompFlagLog, unix.SECCOMP_FILTER_FLAG_LOG},
	{specs.LinuxSeccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
	{specs.LinuxSeccompFlagWaitKillableRecv, unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
}

// KnownActions lists the runtime-spec action names Compile accepts.
func KnownActions() []string {
	out := make([]string, len(actionTable))
	for i, a := range actionTable {
		out[i] = string(a.name)
	}
	return out
}

// KnownOperators lists the runtime-spec operator names Compile accepts.
func KnownOperators() []string {
	out := make([]string, len(operatorTable))
	for i, o := range operatorTable {
		out[i] = string(o)
	}
	return out
}

// KnownArchs lists the architecture names Compile accepts, sorted. Only x86, x86_64, x32, arm and aarch64
// get code; see doc.go.
func KnownArchs() []string {
	out := make([]string, 0, len(knownArchs))
	for a := range knownArchs {
		out = append(out, string(a))
	}
	sort.Strings(out)
	return out
}

// KnownFlags lists the seccomp flag names Compile accepts.
func KnownFlags() []string {
	out := make([]string, len(flagTable))
	for i, f := range flagTable {
		out[i] = string(f.name)
	}
	return out
}

// actionRet validates an action and its errnoRet and returns the SECCOMP_RET_* value. Like runc, ERRNO and
// TRACE default to EPERM; the runtime-spec requires an error when errnoRet is given to an action without one.
func actionRet(act specs.LinuxSeccompAction, errnoRet *uint, actField, errnoField string) (uint32, error) {
	if act == "" {
		return 0, fieldErr(actField, "required")
	}
	for _, a := range actionTable {
		if a.name != act {
			continue
		}
		if !a.errnoRet {
			if errnoRet != nil {
				return 0, fieldErr(errnoField, "not allowed with action %q (only %s and %s take an errno)", act, specs.ActErrno, specs.ActTrace)
			}
			return a.ret, nil
		}
		data := uint(unix.EPERM)
		if errnoRet != nil {
			data = *errnoRet
			// SECCOMP_RET_DATA is 16 bits; larger values would silently change the action.
			if data > unix.SECCOMP_RET_DATA {
				return 0, fieldErr(errnoField, "%d does not fit in the 16-bit SECCOMP_RET_DATA", data)
			}
		}
		return a.ret | uint32(data), nil
	}
	return 0, fieldErr(actField, "unknown action %q", act)
}

// cond is one validated argument comparison, as written in the profile.
type cond struct {
	index    uint
	op       specs.LinuxSeccompOperator
	value    uint64
	valueTwo uint64
}

// rule is one validated syscalls[] entry.
type rule struct {
	names []string
	ret   uint32
	// alts are alternatives, each an AND of conditions: the rule matches when any alternative does.
	// An entry without args has one empty alternative. Several alternatives appear only when two
	// conditions share an argument index: runc then adds each condition as a rule of its own (libseccomp
	// refuses two comparisons of one argument in a rule), and we keep that meaning so a profile behaves
	// the same under both runtimes.
	alts [][]cond
}

type profile struct {
	defRet uint32
	archs  []*archInfo // native first, without duplicates, only those with code
	flags  uint
	rules  []rule
}

// validate checks every field and returns the profile in the form the code generator wants.
func validate(s *specs.LinuxSeccomp, native specs.Arch) (*profile, error) {
	if s == nil {
		return nil, fieldErr(fieldRoot, "no profile")
	}
	p := &profile{}
	var err error
	p.defRet, err = actionRet(s.DefaultAction, s.DefaultErrnoRet, fieldRoot+".defaultAction", fieldRoot+".defaultErrnoRet")
	if err != nil {
		return nil, err
	}

	nativeInfo := knownArchs[native]
	if nativeInfo == nil {
		return nil, fieldErr(fieldRoot+".architectures", "no syscall table for the native architecture %q", native)
	}
	p.archs = append(p.archs, nativeInfo)
	for i, a := range s.Architectures {
		info, ok := knownArchs[a]
		if !ok {
			return nil, fieldErr(fmt.Sprintf("%s.architectures[%d]", fieldRoot, i), "unknown architecture %q", a)
		}
		if info == nil {
			continue
		}
		dup := false
		for _, have := range p.archs {
			dup = dup || have == info
		}
		if !dup {
			p.archs = append(p.archs, info)
		}
	}

	for i, f := range s.Flags {
		found := false
		for _, known := range flagTable {
			if known.name == f {
				p.flags |= known.bit
				found = true
			}
		}
		if !found {
			return nil, fieldErr(fmt.Sprintf("%s.flags[%d]", fieldRoot, i), "unknown flag %q", f)
		}
	}

	for i, sc := range s.Syscalls {
		field := fmt.Sprintf("%s.syscalls[%d]", fieldRoot, i)
		if len(sc.Names) == 0 {
			return nil, fieldErr(field+".names", "must name at least one syscall")
		}
		for j, n := range sc.Names {
			if n == "" {
				return nil, fieldErr(fmt.Sprintf("%s.names[%d]", field, j), "empty syscall name")
			}
		}
		ret, err := actionRet(sc.Action, sc.ErrnoRet, field+".action", field+".errnoRet")
		if err != nil {
			return nil, err
		}
		conds := make([]cond, 0, len(sc.Args))
		var perIndex [6]int
		for j, a := range sc.Args {
			af := fmt.Sprintf("%s.args[%d]", field, j)
			if a.Index > 5 {
				return nil, fieldErr(af+".index", "%d is out of range (syscalls have arguments 0 to 5)", a.Index)
			}
			if a.Op == "" {
				return nil, fieldErr(af+".op", "required")
			}
			known := false
			for _, op := range operatorTable {
				known = known || op == a.Op
			}
			if !known {
				return nil, fieldErr(af+".op", "unknown operator %q", a.Op)
			}
			perIndex[a.Index]++
			conds = append(conds, cond{index: a.Index, op: a.Op, value: a.Value, valueTwo: a.ValueTwo})
		}
		r := rule{names: sc.Names, ret: ret}
		shared := false
		for _, n := range perIndex {
			shared = shared || n > 1
		}
		if shared {
			for _, c := range conds {
				r.alts = append(r.alts, []cond{c})
			}
		} else {
			r.alts = [][]cond{conds}
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// Compile validates and compiles the profile for the architectures it lists (the native one is always
// included). Errors wrap ErrInvalidProfile and name the offending field, e.g.
// `linux.seccomp.syscalls[3].args[0].op: unknown operator "SCMP_CMP_FOO"`.
//
// Rule semantics, chosen to match runc with libseccomp wherever libseccomp is well defined:
//   - a rule whose action (with its errno) equals the default action is skipped, as runc does;
//   - syscall names unknown on an architecture are skipped for that architecture;
//   - for one syscall, an unconditional rule (no args, or args that always hold) wins over every
//     conditional rule, whatever their order, and the first unconditional rule wins over later ones;
//   - otherwise the conditional rules are tried in profile order and the first that matches decides;
//     no match falls through to the default action. (libseccomp orders overlapping conditional rules by
//     its own tree order instead; profile order is the one a reader can predict.)
func Compile(s *specs.LinuxSeccomp) (*Program, error) {
	return compile(s, nativeArch())
}

func compile(s *specs.LinuxSeccomp, native specs.Arch) (*Program, error) {
	p, err := validate(s, native)
	if err != nil {
		return nil, err
	}
	filter, err := generate(p)
	if err != nil {
		return nil, err
	}
	if len(filter) > MaxInstructions {
		return nil, fieldErr(fieldRoot, "the compiled filter needs %d BPF instructions, more than the kernel's limit of %d", len(filter), MaxInstructions)
	}
	if err := verify(filter); err != nil {
		return nil, fmt.Errorf("seccomp: internal error: generated filter is invalid: %w", err)
	}
	prog := &Program{Filter: filter, Flags: p.flags, Unknown: unknownNames(p)}
	for _, ins := range filter {
		if ins.Code == opRetK && ins.K&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_USER_NOTIF {
			prog.Notify = true
		}
	}
	return prog, nil
}

func unknownNames(p *profile) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range p.rules {
		for _, n := range r.names {
			if seen[n] {
				continue
			}
			seen[n] = true
			known := false
			for _, a := range p.archs {
				if _, ok := a.nr(n); ok {
					known = true
					break
				}
			}
			if !known {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}
