package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices controller: device access is decided by eBPF programs of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. The kernel runs them on open(2) and
// mknod(2) of a device node with a context
//
//	struct bpf_cgroup_dev_ctx { __u32 access_type; __u32 major; __u32 minor; };
//
// where access_type is (access << 16) | type (type: 1 block, 2 char; access: mknod 1,
// read 2, write 4). The program returns 1 to allow and 0 to deny (EPERM). With
// BPF_F_ALLOW_MULTI several programs may be attached to one cgroup and to its ancestors; all
// must allow.

// bpfInsn is struct bpf_insn: opcode, dst and src register (4 bits each), offset, immediate.
type bpfInsn struct {
	code uint8
	regs uint8
	off  int16
	imm  int32
}

// littleEndian says how the dst_reg:4/src_reg:4 bitfield is laid out: C allocates
// bitfields from the low bits on little-endian targets and from the high bits on big-endian
// ones.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func ins(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	regs := dst&0xf | src<<4
	if !littleEndian {
		regs = dst<<4 | src&0xf
	}
	return bpfInsn{code: code, regs: regs, off: off, imm: imm}
}

// Registers: r0 return value, r1 context on entry; the rest are ours.
const (
	r0 = iota
	r1
	rType   // r2: device type
	rAccess // r3: access bits not yet granted by a later rule
	rMajor  // r4
	rMinor  // r5
	rTmp    // r6
)

const (
	opLdxW   = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W
	opMov32X = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_X
	opAnd32K = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opRsh32K = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K
	opMov64K = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K
	// 32-bit compares (kernel 5.1+): device numbers are u32 and an immediate above 2^31
	// would be sign-extended by a 64-bit compare.
	opJne32K = unix.BPF_JMP32 | unix.BPF_JNE | unix.BPF_K
	opJeq32K = unix.BPF_JMP32 | unix.BPF_JEQ | unix.BPF_K
	opExit   = unix.BPF_JMP | unix.BPF_EXIT
)

// deviceFilter assembles the program for a device list with the spec's meaning, "later rules
// win", made exact per access bit: for each of mknod/read/write that a request asks for, the
// last rule that matches the device and names that bit decides. The program visits the rules
// from last to first, keeping in rAccess the requested bits no rule has granted yet:
//
//   - an allow rule that matches the device clears its bits; when none are left, allow;
//   - a deny rule that matches the device and names a bit still requested, denies.
//
// A request no rule decides is allowed, as in a cgroup with no rules at all, so a list must
// start with deny-all to be an allow-list (the runtime's default list does).
func deviceFilter(rules []devRule) []bpfInsn {
	prog := []bpfInsn{
		ins(opLdxW, rType, r1, 0, 0),        // rType = ctx->access_type
		ins(opMov32X, rAccess, rType, 0, 0), // rAccess = access_type
		ins(opAnd32K, rType, 0, 0, 0xffff),  // rType &= 0xffff
		ins(opRsh32K, rAccess, 0, 0, 16),    // rAccess >>= 16
		ins(opLdxW, rMajor, r1, 4, 0),       // rMajor = ctx->major
		ins(opLdxW, rMinor, r1, 8, 0),       // rMinor = ctx->minor
	}
	for i := len(rules) - 1; i >= 0; i-- {
		prog = append(prog, ruleBlock(rules[i])...)
	}
	return append(prog,
		ins(opMov64K, r0, 0, 0, 1), // no rule decided: allow
		ins(opExit, 0, 0, 0, 0))
}

// ruleBlock is one rule; a test that fails jumps to the end of the block, i.e. to the next
// (earlier) rule. Every block ends in a conditional jump's fall-through path, so no
// instruction is unreachable, which the verifier would reject.
func ruleBlock(r devRule) []bpfInsn {
	var b []bpfInsn
	var skips []int // conditional jumps to patch to the end of the block
	skip := func(reg uint8, v int64) {
		skips = append(skips, len(b))
		b = append(b, ins(opJne32K, reg, 0, 0, int32(uint32(v))))
	}
	switch r.typ {
	case 'b':
		skip(rType, unix.BPF_DEVCG_DEV_BLOCK)
	case 'c':
		skip(rType, unix.BPF_DEVCG_DEV_CHAR)
	}
	if r.major >= 0 {
		skip(rMajor, r.major)
	}
	if r.minor >= 0 {
		skip(rMinor, r.minor)
	}
	if r.allow {
		b = append(b,
			ins(opAnd32K, rAccess, 0, 0, int32(^r.access&accAll)), // grant this rule's bits
			ins(opJne32K, rAccess, 0, 2, 0),                       // bits left: earlier rules decide
			ins(opMov64K, r0, 0, 0, 1),
			ins(opExit, 0, 0, 0, 0))
	} else {
		b = append(b,
			ins(opMov32X, rTmp, rAccess, 0, 0),
			ins(opAnd32K, rTmp, 0, 0, int32(r.access)),
			ins(opJeq32K, rTmp, 0, 2, 0), // none of our bits requested: go on
			ins(opMov64K, r0, 0, 0, 0),
			ins(opExit, 0, 0, 0, 0))
	}
	for _, at := range skips {
		b[at].off = int16(len(b) - at - 1)
	}
	return b
}

// license: device programs call no GPL-only helper, so any license string will do.
var license = []byte("Apache-2.0\x00")

func bpfCall(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
		// EAGAIN: the verifier was interrupted by a signal; the kernel asks for a retry.
		if errno == unix.EAGAIN || errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), nil
	}
}

// union bpf_attr members used here. The kernel's pointers are __aligned_u64; they are
// declared unsafe.Pointer so that the garbage collector and the stack copier know about
// them (a uint64 would leave a buffer on a goroutine stack free to move or die before the
// syscall reads it). That matches the C layout only on 64-bit targets, which the size check
// below enforces at compile time: the runtime targets amd64 and arm64.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              unsafe.Pointer
	license            unsafe.Pointer
	logLevel           uint32
	logSize            uint32
	logBuf             unsafe.Pointer
	kernVersion        uint32
	progFlags          uint32
	progName           [unix.BPF_OBJ_NAME_LEN]byte
	progIfindex        uint32
	expectedAttachType uint32
}

type progAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

type progQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     unsafe.Pointer
	progCnt     uint32
	_           uint32
}

// Compile-time layout checks (a negative array length does not compile).
var (
	_ [unsafe.Sizeof(progLoadAttr{}) - 72]struct{}
	_ [72 - unsafe.Sizeof(progLoadAttr{})]struct{}
	_ [unsafe.Sizeof(progQueryAttr{}) - 32]struct{}
	_ [unsafe.Sizeof(bpfInsn{}) - 8]struct{}
)

type getFdByIDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

// loadDeviceProgram loads the program and returns its fd (the kernel makes bpf fds
// close-on-exec). When the verifier refuses it, the verifier's log is in the error.
func loadDeviceProgram(prog []bpfInsn) (int, error) {
	attr := progLoadAttr{
		progType:           unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:            uint32(len(prog)),
		insns:              unsafe.Pointer(&prog[0]),
		license:            unsafe.Pointer(&license[0]),
		expectedAttachType: unix.BPF_CGROUP_DEVICE,
	}
	copy(attr.progName[:], "berth_devices")
	fd, err := bpfCall(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	if err == nil {
		return fd, nil
	}
	log := make([]byte, 64<<10)
	attr.logLevel = 1
	attr.logSize = uint32(len(log))
	attr.logBuf = unsafe.Pointer(&log[0])
	fd, err2 := bpfCall(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(log)
	if err2 == nil {
		// Loaded the second time round: whatever failed was transient.
		return fd, nil
	}
	msg := string(bytes.TrimRight(log[:max(0, bytes.IndexByte(log, 0))], "\n"))
	return -1, fmt.Errorf("bpf(BPF_PROG_LOAD): %w: verifier: %s", err, msg)
}

// attachedDevicePrograms returns the ids of the device programs attached directly to the
// cgroup.
func attachedDevicePrograms(cgroupFd int) ([]uint32, error) {
	ids := make([]uint32, 64)
	for {
		attr := progQueryAttr{
			targetFd:   uint32(cgroupFd),
			attachType: unix.BPF_CGROUP_DEVICE,
			progIDs:    unsafe.Pointer(&ids[0]),
			progCnt:    uint32(len(ids)),
		}
		_, err := bpfCall(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		runtime.KeepAlive(ids)
		if errors.Is(err, unix.ENOSPC) {
			ids = make([]uint32, 2*len(ids))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bpf(BPF_PROG_QUERY): %w", err)
		}
		return ids[:attr.progCnt], nil
	}
}

// setDeviceFilter replaces the device program of the cgroup at dir. The new program is
// attached before the old ones are detached, so there is no moment without a filter (for
// that moment both apply, i.e. the stricter of old and new). Every device program attached
// directly to the container's cgroup is taken as a previous one of ours: the container's
// cgroup is the runtime's.
func setDeviceFilter(dir string, rules []devRule) error {
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(cg)
	old, err := attachedDevicePrograms(cg)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	prog, err := loadDeviceProgram(deviceFilter(rules))
	if err != nil {
		return err
	}
	defer unix.Close(prog)
	attach := progAttachAttr{
		targetFd:    uint32(cg),
		attachBpfFd: uint32(prog),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpfCall(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return fmt.Errorf("bpf(BPF_PROG_ATTACH) %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		get := getFdByIDAttr{id: id}
		fd, err := bpfCall(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if errors.Is(err, unix.ENOENT) {
			continue // gone meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bpf(BPF_PROG_GET_FD_BY_ID) %d: %w", id, err))
			continue
		}
		detach := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		if _, err := bpfCall(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach)); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("bpf(BPF_PROG_DETACH) %s, program %d: %w", dir, id, err))
		}
		unix.Close(fd)
	}
	return errors.Join(errs...)
}
