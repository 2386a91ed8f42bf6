package nsexec

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter -O2
import "C"

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
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

// Encode renders the bootstrap's first frame, the namespaces, sent as soon as the process is
// started; the second, the cgroup to fork into (WriteCgroupFrame), follows once that exists, the
// process entering its namespaces meanwhile.
func (b Bootstrap) Encode() ([]byte, error) {
	var sb strings.Builder
	for _, j := range b.Joins {
		c, ok := cloneFlag[j.Type]
		if !ok {
			return nil, fmt.Errorf("unknown namespace type %q", j.Type)
		}
		if strings.ContainsAny(j.Path, "\n\x00") {
			return nil, fmt.Errorf("namespace path %q contains a newline or NUL", j.Path)
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
			return nil, fmt.Errorf("linux.timeOffsets: unknown clock %q (want monotonic or boottime)", clock)
		}
		o := b.TimeOffsets[clock]
		fmt.Fprintf(&sb, "timens %s %d %d\n", clock, o.Secs, o.Nanosecs)
	}
	return []byte(sb.String()), nil
}

// WriteCgroupFrame writes the bootstrap's second frame: the cgroup v2 directory dir to fork into,
// or none.
func WriteCgroupFrame(conn *os.File, dir *os.File) error {
	if dir == nil {
		return WriteFrame(conn, nil)
	}
	return WriteFrameFDs(conn, []byte("cgfd .\n"), []*os.File{dir})
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

// MaxFrameFDs is how many descriptors one frame can carry (the kernel's SCM_MAX_FD is 253).
const MaxFrameFDs = 250

// WriteFrameFDs writes one frame with files attached to its first bytes (SCM_RIGHTS).
func WriteFrameFDs(conn *os.File, body []byte, files []*os.File) error {
	if len(files) == 0 {
		return WriteFrame(conn, body)
	}
	if len(files) > MaxFrameFDs {
		return fmt.Errorf("%d descriptors to pass to the container process: at most %d fit in one message", len(files), MaxFrameFDs)
	}
	if len(body) > maxFrame {
		return fmt.Errorf("frame of %d bytes is too large", len(body))
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	buf := make([]byte, 4+len(body))
	binary.LittleEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	n, err := unix.SendmsgN(int(conn.Fd()), buf, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL)
	runtime.KeepAlive(files)
	if err != nil {
		return err
	}
	if n < len(buf) {
		// A stream socket may take a large frame in pieces; the descriptors went with the first.
		_, err = conn.Write(buf[n:])
	}
	return err
}

// ReadFrameFDs reads one frame and the descriptors attached to it, which are close-on-exec.
// io.EOF means the peer closed the socket between frames.
func ReadFrameFDs(conn *os.File) ([]byte, []int, error) {
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(4*MaxFrameFDs))
	var n, oobn, flags int
	var err error
	for {
		n, oobn, flags, _, err = unix.Recvmsg(int(conn.Fd()), hdr[:], oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_WAITALL)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	var fds []int
	if oobn > 0 {
		msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
		if perr == nil {
			for _, m := range msgs {
				if rights, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, rights...)
				}
			}
		}
	}
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if flags&unix.MSG_CTRUNC != 0 {
		closeAll()
		return nil, nil, fmt.Errorf("descriptors lost: more than %d were sent", MaxFrameFDs)
	}
	if n == 0 {
		closeAll()
		return nil, nil, io.EOF
	}
	if n < 4 {
		if _, err := io.ReadFull(conn, hdr[n:]); err != nil {
			closeAll()
			return nil, nil, io.ErrUnexpectedEOF
		}
	}
	size := binary.LittleEndian.Uint32(hdr[:])
	if size > maxFrame {
		closeAll()
		return nil, nil, fmt.Errorf("frame of %d bytes is too large", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(conn, body); err != nil {
		closeAll()
		return nil, nil, io.ErrUnexpectedEOF
	}
	return body, fds, nil
}
