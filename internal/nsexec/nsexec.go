package nsexec

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter -O2
import "C"

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// EnvSyncFD names the environment variable holding the sync socket's descriptor number in the child.
const EnvSyncFD = "_BERTH_SYNC_FD"

// maxFrame bounds a frame so that a confused peer cannot make us allocate without limit.
const maxFrame = 16 << 20

// Join is a namespace to enter by path.
type Join struct {
	Type specs.LinuxNamespaceType
	Path string
}

// Bootstrap is what the constructor needs to place the process in its namespaces.
type Bootstrap struct {
	// CgroupFD, if positive, is the descriptor (in the child) of a directory, and CgroupPath the
	// path below it (maybe "."), of a cgroup v2 directory to fork into. The directory need only
	// exist once the bootstrap is sent.
	CgroupFD    int
	CgroupPath  string
	Joins       []Join
	Unshare     uintptr // CLONE_NEW* flags
	TimeOffsets map[string]specs.LinuxTimeOffset
}

// cloneFlag maps a runtime-spec namespace type to its CLONE_NEW* flag and to the name the constructor
// (and /proc/<pid>/ns) uses.
var cloneFlag = map[specs.LinuxNamespaceType]struct {
	flag uintptr
	name string
}{
	specs.PIDNamespace:     {unix.CLONE_NEWPID, "pid"},
	specs.NetworkNamespace: {unix.CLONE_NEWNET, "net"},
	specs.MountNamespace:   {unix.CLONE_NEWNS, "mnt"},
	specs.IPCNamespace:     {unix.CLONE_NEWIPC, "ipc"},
	specs.UTSNamespace:     {unix.CLONE_NEWUTS, "uts"},
	specs.UserNamespace:    {unix.CLONE_NEWUSER, "user"},
	specs.CgroupNamespace:  {unix.CLONE_NEWCGROUP, "cgroup"},
	specs.TimeNamespace:    {unix.CLONE_NEWTIME, "time"},
}

// CloneFlag returns the CLONE_NEW* flag of a namespace type, or false if the type is unknown.
func CloneFlag(t specs.LinuxNamespaceType) (uintptr, bool) {
	c, ok := cloneFlag[t]
	return c.flag, ok
}

// ProcName returns the name of a namespace type under /proc/<pid>/ns.
func ProcName(t specs.LinuxNamespaceType) string { return cloneFlag[t].name }

// Encode renders the bootstrap's two frames: the namespaces, sent as soon as the process is
// started, and the cgroup to fork into, sent once it exists (the process enters its namespaces
// meanwhile).
func (b Bootstrap) Encode() (namespaces, cgroup []byte, err error) {
	if b.CgroupFD > 0 {
		if b.CgroupPath == "" || strings.ContainsAny(b.CgroupPath, "\n\x00") {
			return nil, nil, fmt.Errorf("cgroup path %q is empty or contains a newline or NUL", b.CgroupPath)
		}
		cgroup = []byte("cgfd " + strconv.Itoa(b.CgroupFD) + " " + b.CgroupPath + "\n")
	}
	var sb strings.Builder
	for _, j := range b.Joins {
		c, ok := cloneFlag[j.Type]
		if !ok {
			return nil, nil, fmt.Errorf("unknown namespace type %q", j.Type)
		}
		if strings.ContainsAny(j.Path, "\n\x00") {
			return nil, nil, fmt.Errorf("namespace path %q contains a newline or NUL", j.Path)
		}
		fmt.Fprintf(&sb, "join %s %s\n", c.name, j.Path)
	}
	if b.Unshare != 0 {
		sb.WriteString("unshare " + strconv.FormatUint(uint64(b.Unshare), 10) + "\n")
	}
	clocks := make([]string, 0, len(b.TimeOffsets))
	for k := range b.TimeOffsets {
		clocks = append(clocks, k)
	}
	sort.Strings(clocks)
	for _, clock := range clocks {
		if clock != "monotonic" && clock != "boottime" {
			return nil, nil, fmt.Errorf("linux.timeOffsets: unknown clock %q (want monotonic or boottime)", clock)
		}
		o := b.TimeOffsets[clock]
		fmt.Fprintf(&sb, "timens %s %d %d\n", clock, o.Secs, o.Nanosecs)
	}
	return []byte(sb.String()), cgroup, nil
}

// WriteFrame writes one length-prefixed frame.
func WriteFrame(w io.Writer, body []byte) error {
	if len(body) > maxFrame {
		return fmt.Errorf("frame of %d bytes is too large", len(body))
	}
	buf := make([]byte, 4+len(body))
	binary.LittleEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame. io.EOF means the peer closed the socket between frames.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes is too large", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}
