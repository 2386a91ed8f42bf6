package nsexec

// extern int berth_prespawn_pid;
// extern int berth_prespawn_fd;
// extern int berth_prespawn_child_fd;
// extern int berth_early;
// extern int berth_early_kind;
// extern char berth_early_dir[4096];
// extern char berth_early_state[5296];
// extern char berth_early_ns[8192];
// extern char berth_early_cgroup[4096];
// extern int berth_early_preserve;
// extern int berth_early_pid;
// extern unsigned long long berth_early_pidstart;
import "C"

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSpawnFDs is MAX_SPAWN_FDS in nsexec.c.
const maxSpawnFDs = 250

// Prespawned is the container process the constructor started ahead, waiting for its descriptors
// (see nsexec.c).
type Prespawned struct {
	Pid  int
	Conn *os.File
	// childFD is the number of the process's end of Conn, in the process: its descriptors must all
	// go below it.
	childFD int
	// Early, for exec, is what the constructor already sent the process (early.c): it has joined
	// the container and forked, and waits for its pid frame to be read. Broken: sending failed
	// midway, and the process can only be discarded.
	Early  *EarlyExec
	Broken bool
}

// EarlyExec is what the constructor sent a process started ahead, for exec (from the state of the
// container whose init is Pid, started at PidStart) or for create and run (Create; from the
// bundle's config): its first frames, the stdio and Preserve descriptors and the directory Dir,
// the bootstrap's namespaces NS and the cgroup v2 directory Cgroup ("" if none).
type EarlyExec struct {
	Create   bool
	Dir      string
	NS       string
	Cgroup   string
	Preserve int
	Pid      int
	PidStart uint64
}

// EarlyMarker is the file the constructor leaves in a state directory it made for a create started
// early, naming the cgroup v2 directory it made, until the state record is written.
const EarlyMarker = "early-cgroup"

// adopted: the runtime half took over the state directory the constructor made.
var adopted bool

// AdoptEarlyStateDir reports whether dir is the state directory the constructor made for this
// create (which then belongs to the caller, like one it made itself).
func AdoptEarlyStateDir(dir string) bool {
	if C.berth_early_kind != 2 || C.berth_early == 0 || C.GoString(&C.berth_early_state[0]) != dir {
		return false
	}
	adopted = true
	return true
}

// taken: the process is handed out once. Only the main goroutine asks.
var taken bool

// TakePrespawned returns the process started ahead, or nil if there is none (not root, not a
// command that starts one, or BERTH_NO_PRESPAWN set) or it was taken already.
func TakePrespawned() *Prespawned {
	if taken || C.berth_prespawn_pid <= 0 {
		return nil
	}
	taken = true
	p := &Prespawned{
		Pid:     int(C.berth_prespawn_pid),
		Conn:    os.NewFile(uintptr(C.berth_prespawn_fd), "prespawn"),
		childFD: int(C.berth_prespawn_child_fd),
	}
	switch C.berth_early {
	case 1:
		p.Early = &EarlyExec{
			Create:   C.berth_early_kind == 2,
			Dir:      C.GoString(&C.berth_early_dir[0]),
			NS:       C.GoString(&C.berth_early_ns[0]),
			Cgroup:   C.GoString(&C.berth_early_cgroup[0]),
			Preserve: int(C.berth_early_preserve),
			Pid:      int(C.berth_early_pid),
			PidStart: uint64(C.berth_early_pidstart),
		}
	case -1:
		p.Broken = true
	}
	return p
}

// DiscardPrespawned ends the process started ahead if nothing took it.
func DiscardPrespawned() {
	if p := TakePrespawned(); p != nil {
		p.Discard()
	}
}

// Discard ends the process: closing the socket makes it exit. It is reaped here. A process that
// joined a container early has forked there: that fork is killed and reaped too.
func (p *Prespawned) Discard() {
	if p.Early != nil {
		if pid := p.forkedPid(); pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
			wait(pid)
		}
	}
	p.Conn.Close()
	wait(p.Pid)
	if C.berth_early_kind == 2 {
		// What the constructor made for a create started early, now empty.
		state := C.GoString(&C.berth_early_state[0])
		marker := state + "/" + EarlyMarker
		if b, err := os.ReadFile(marker); err == nil {
			for _, dir := range EarlyCgroups(b) {
				_ = unix.Rmdir(dir)
			}
		}
		_ = unix.Unlink(marker)
		if !adopted {
			_ = unix.Rmdir(state)
		}
		C.berth_early_kind = 0
	}
}

// EarlyCgroups returns the cgroup directories an early marker lists (one per line).
func EarlyCgroups(marker []byte) []string {
	var dirs []string
	for _, l := range strings.Split(string(marker), "\n") {
		if strings.HasPrefix(l, "/sys/fs/cgroup/") && !strings.Contains(l, "..") {
			dirs = append(dirs, l)
		}
	}
	return dirs
}

// forkedPid reads the frames the process sends until the pid of its fork (0 if none comes).
func (p *Prespawned) forkedPid() int {
	for {
		body, err := ReadFrame(p.Conn)
		if err != nil {
			return 0
		}
		// {"type":"pid","pid":N} (nsexec.c); an error frame ends it.
		s := string(body)
		i := strings.Index(s, `"pid":`)
		if !strings.Contains(s, `"type":"pid"`) || i < 0 {
			if strings.Contains(s, `"type":"error"`) {
				return 0
			}
			continue
		}
		n, err := strconv.Atoi(strings.TrimRight(s[i+len(`"pid":`):], "}"))
		if err != nil {
			return 0
		}
		return n
	}
}

func wait(pid int) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			return
		}
	}
}

// Fits reports whether the process can be given n descriptors and start in dir.
func (p *Prespawned) Fits(n int, dir string) bool {
	return n < p.childFD && n <= maxSpawnFDs && len(dir) < 4096 && !strings.ContainsAny(dir, "\n\x00")
}

// Send gives the process its descriptors, placed at 0, 1, 2, ... in order with position hole left
// empty (where the sync socket would be), and its working directory.
func (p *Prespawned) Send(files []*os.File, hole int, dir string) error {
	if !p.Fits(len(files), dir) {
		return fmt.Errorf("prespawned process cannot take %d descriptors and directory %q", len(files), dir)
	}
	fds := make([]int, 0, len(files))
	for i, f := range files {
		if i != hole {
			fds = append(fds, int(f.Fd()))
		}
	}
	body := "hole " + strconv.Itoa(hole) + "\n"
	if dir != "" {
		body += "dir " + dir + "\n"
	}
	frame := make([]byte, 4+len(body))
	binary.LittleEndian.PutUint32(frame, uint32(len(body)))
	copy(frame[4:], body)
	n, err := unix.SendmsgN(int(p.Conn.Fd()), frame, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL)
	runtime.KeepAlive(files)
	if err != nil {
		return fmt.Errorf("send descriptors to the container process: %w", err)
	}
	if n != len(frame) {
		return fmt.Errorf("send descriptors to the container process: short write (%d of %d bytes)", n, len(frame))
	}
	return nil
}
