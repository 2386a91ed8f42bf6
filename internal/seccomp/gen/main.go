// Command gen writes the syscall tables of package seccomp (zsyscalls_*_table.go).
//
// The numbers come from golang.org/x/sys/unix's zsysnum_linux_*.go files, which are themselves generated
// from the kernel's uapi headers, so that the tables move with the x/sys version in go.mod instead of being
// typed by hand. Only what those files cannot express is written here: the x32 ABI (x/sys has no x32 port)
// and the ARM private system calls that live outside the __NR_ range.
//
// Run it with `go generate ./internal/seccomp/` (the package carries the //go:generate line).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// x32Renumbered lists, in order, the x32 system calls numbered 512 and up. In
// arch/x86/entry/syscalls/syscall_64.tbl these are the "x32" ABI rows: a historical design error gave
// them numbers of their own (their x86_64 twins take 64-bit structures), and the kernel promises never to
// add to the range, so this list is closed.
var x32Renumbered = []string{
	"rt_sigaction",      // 512
	"rt_sigreturn",      // 513
	"ioctl",             // 514
	"readv",             // 515
	"writev",            // 516
	"recvfrom",          // 517
	"sendmsg",           // 518
	"recvmsg",           // 519
	"execve",            // 520
	"ptrace",            // 521
	"rt_sigpending",     // 522
	"rt_sigtimedwait",   // 523
	"rt_sigqueueinfo",   // 524
	"sigaltstack",       // 525
	"timer_create",      // 526
	"mq_notify",         // 527
	"kexec_load",        // 528
	"waitid",            // 529
	"set_robust_list",   // 530
	"get_robust_list",   // 531
	"vmsplice",          // 532
	"move_pages",        // 533
	"preadv",            // 534
	"pwritev",           // 535
	"rt_tgsigqueueinfo", // 536
	"recvmmsg",          // 537
	"sendmmsg",          // 538
	"process_vm_readv",  // 539
	"process_vm_writev", // 540
	"setsockopt",        // 541
	"getsockopt",        // 542
	"io_setup",          // 543
	"io_submit",         // 544
	"execveat",          // 545
	"preadv2",           // 546
	"pwritev2",          // 547
}

const x32FirstRenumbered = 512

// x64Only lists the remaining "64" ABI rows of syscall_64.tbl: x86_64 numbers that have no x32 entry at all
// (obsolete or never implemented calls). Every other x86_64 row is "common" and has the same number on x32.
var x64Only = []string{
	"uselib", "_sysctl", "create_module", "get_kernel_syms", "query_module", "nfsservctl",
	"set_thread_area", "get_thread_area", "epoll_ctl_old", "epoll_wait_old", "vserver",
}

// x32SyscallBit is __X32_SYSCALL_BIT: x32 tasks enter the x86_64 syscall path with it set in the number, and
// seccomp sees the number with the bit, so the table stores it that way.
const x32SyscallBit = 0x40000000

// armPrivate lists the ARM private system calls (arch/arm/include/uapi/asm/unistd.h, __ARM_NR_BASE =
// 0x0f0000 on EABI) and the sync_file_range2 alias that header defines; mksysnum does not emit either.
var armPrivate = map[string]uint32{
	"breakpoint":       0x0f0001,
	"cacheflush":       0x0f0002,
	"usr26":            0x0f0003,
	"usr32":            0x0f0004,
	"set_tls":          0x0f0005,
	"get_tls":          0x0f0006,
	"sync_file_range2": 341, // = __NR_arm_sync_file_range
}

// notSyscalls are SYS_ constants in x/sys that are not system calls.
var notSyscalls = map[string]bool{
	"syscall_mask": true, // arm: __NR_SYSCALL_MASK
}

type table struct {
	arch    string // file suffix and identifier part
	goArch  string // x/sys file suffix
	comment string
	entries map[string]uint32
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("seccomp/gen: ")
	dir, version, err := xsysDir()
	if err != nil {
		log.Fatal(err)
	}
	tables := []*table{
		{arch: "x86_64", goArch: "amd64", comment: "SCMP_ARCH_X86_64"},
		{arch: "x86", goArch: "386", comment: "SCMP_ARCH_X86 (i386)"},
		{arch: "aarch64", goArch: "arm64", comment: "SCMP_ARCH_AARCH64"},
		{arch: "arm", goArch: "arm", comment: "SCMP_ARCH_ARM (EABI)"},
	}
	for _, t := range tables {
		t.entries, err = parseSysnum(filepath.Join(dir, "unix", "zsysnum_linux_"+t.goArch+".go"))
		if err != nil {
			log.Fatal(err)
		}
	}
	for name, nr := range armPrivate {
		tables[3].entries[name] = nr
	}
	x32, err := deriveX32(tables[0].entries)
	if err != nil {
		log.Fatal(err)
	}
	tables = append(tables, &table{arch: "x32", comment: "SCMP_ARCH_X32 (numbers include __X32_SYSCALL_BIT)", entries: x32})

	for _, t := range tables {
		if err := write(t, version); err != nil {
			log.Fatal(err)
		}
	}
}

// xsysDir finds the x/sys module the main module requires, so the tables match go.mod.
func xsysDir() (dir, version string, err error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Path}}@{{.Version}}", "golang.org/x/sys").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", "", fmt.Errorf("go list -m golang.org/x/sys: %v: %s", err, ee.Stderr)
		}
		return "", "", fmt.Errorf("go list -m golang.org/x/sys: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "", "", errors.New("go list -m golang.org/x/sys: module not downloaded (run go mod download)")
	}
	return f[0], f[1], nil
}

// parseSysnum reads the SYS_* integer constants of one zsysnum file. Anything that is not a plain integer
// literal is an error rather than a silent gap in the table.
func parseSysnum(path string) (map[string]uint32, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	m := make(map[string]uint32)
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "SYS_") {
					continue
				}
				name := strings.ToLower(strings.TrimPrefix(id.Name, "SYS_"))
				if notSyscalls[name] {
					continue
				}
				if i >= len(vs.Values) {
					return nil, fmt.Errorf("%s: %s has no value", fset.Position(id.Pos()), id.Name)
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					return nil, fmt.Errorf("%s: %s is not an integer literal", fset.Position(id.Pos()), id.Name)
				}
				n, err := strconv.ParseUint(lit.Value, 0, 32)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %v", fset.Position(id.Pos()), id.Name, err)
				}
				if old, dup := m[name]; dup && old != uint32(n) {
					return nil, fmt.Errorf("%s: %s defined twice", fset.Position(id.Pos()), id.Name)
				}
				m[name] = uint32(n)
			}
		}
	}
	if len(m) < 200 {
		return nil, fmt.Errorf("%s: only %d syscalls found, the format must have changed", path, len(m))
	}
	return m, nil
}

func deriveX32(x64 map[string]uint32) (map[string]uint32, error) {
	x32 := make(map[string]uint32, len(x64))
	skip := make(map[string]bool)
	for _, n := range x64Only {
		if _, ok := x64[n]; !ok {
			return nil, fmt.Errorf("x32: %q is listed as 64-bit only but x86_64 does not have it", n)
		}
		skip[n] = true
	}
	renum := make(map[string]uint32)
	for i, n := range x32Renumbered {
		if _, ok := x64[n]; !ok {
			return nil, fmt.Errorf("x32: renumbered %q has no x86_64 twin", n)
		}
		renum[n] = uint32(x32FirstRenumbered + i)
	}
	for name, nr := range x64 {
		if skip[name] {
			continue
		}
		if r, ok := renum[name]; ok {
			nr = r
		} else if nr >= x32FirstRenumbered && nr < x32FirstRenumbered+uint32(len(x32Renumbered)) {
			return nil, fmt.Errorf("x32: x86_64 %q uses %d, inside the x32 range", name, nr)
		}
		x32[name] = nr | x32SyscallBit
	}
	return x32, nil
}

func write(t *table, version string) error {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./gen from %s; DO NOT EDIT.\n\n", version)
	fmt.Fprintf(&b, "package seccomp\n\n")
	fmt.Fprintf(&b, "// syscalls_%s is the %s system call table, sorted by name for binary search.\n", t.arch, t.comment)
	fmt.Fprintf(&b, "var syscalls_%s = [...]sysEntry{\n", t.arch)
	for _, n := range names {
		if t.arch == "x32" || t.entries[n] > 0xffff {
			fmt.Fprintf(&b, "\t{%q, %#x},\n", n, t.entries[n])
		} else {
			fmt.Fprintf(&b, "\t{%q, %d},\n", n, t.entries[n])
		}
	}
	fmt.Fprintf(&b, "}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return fmt.Errorf("%s: gofmt: %w", t.arch, err)
	}
	// The _table suffix keeps Go from reading "arm" in zsyscalls_arm.go as a GOARCH build constraint.
	return os.WriteFile("zsyscalls_"+t.arch+"_table.go", src, 0o644)
}
