package runtime

import (
	"fmt"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var mempolicyModes = map[specs.MemoryPolicyModeType]uintptr{
	specs.MpolDefault: 0, specs.MpolPreferred: 1, specs.MpolBind: 2, specs.MpolInterleave: 3,
	specs.MpolLocal: 4, specs.MpolPreferredMany: 5, specs.MpolWeightedInterleave: 6,
}

var mempolicyFlags = map[specs.MemoryPolicyFlagType]uintptr{
	specs.MpolFNumaBalancing: 1 << 13, specs.MpolFRelativeNodes: 1 << 14, specs.MpolFStaticNodes: 1 << 15,
}

func validateMemoryPolicy(p *specs.LinuxMemoryPolicy) error {
	if p == nil {
		return nil
	}
	if _, ok := mempolicyModes[p.Mode]; !ok {
		return invalid("linux.memoryPolicy.mode", "unknown mode %q", p.Mode)
	}
	for i, f := range p.Flags {
		if _, ok := mempolicyFlags[f]; !ok {
			return invalid(fmt.Sprintf("linux.memoryPolicy.flags[%d]", i), "unknown flag %q", f)
		}
	}
	if p.Nodes != "" {
		if _, err := parseCPUList(p.Nodes); err != nil {
			return invalid("linux.memoryPolicy.nodes", "%v", err)
		}
	}
	return nil
}

// setMemoryPolicy applies linux.memoryPolicy to the calling thread, which then execs: the policy
// survives execve.
func setMemoryPolicy(p *specs.LinuxMemoryPolicy) error {
	mode := mempolicyModes[p.Mode]
	for _, f := range p.Flags {
		mode |= mempolicyFlags[f]
	}
	var mask [16]uint64 // 1024 nodes
	maxnode := uintptr(0)
	if p.Nodes != "" {
		nodes, _ := parseCPUList(p.Nodes)
		for _, n := range nodes {
			if n >= len(mask)*64 {
				return fmt.Errorf("linux.memoryPolicy.nodes: node %d is beyond 1023", n)
			}
			mask[n/64] |= 1 << uint(n%64)
		}
		maxnode = uintptr(len(mask) * 64)
	}
	var ptr uintptr
	if maxnode > 0 {
		ptr = uintptr(unsafe.Pointer(&mask[0]))
	}
	if _, _, errno := unix.Syscall(unix.SYS_SET_MEMPOLICY, mode, ptr, maxnode); errno != 0 {
		return fmt.Errorf("linux.memoryPolicy: set_mempolicy(%s, %q): %w", p.Mode, p.Nodes, errno)
	}
	return nil
}
