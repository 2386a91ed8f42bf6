package runtime

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux"
)

// Errors callers classify; every error the package returns about a container wraps one of these when
// it applies, and the CLI's messages keep the words clients match on ("does not exist").
var (
	ErrNotExist     = errors.New("does not exist")
	ErrExist        = errors.New("already exists")
	ErrInvalid      = errors.New("invalid argument")
	ErrWrongState   = errors.New("container is in the wrong state")
	ErrNotSupported = errors.New("not supported")
)

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
	// stateVersion is bumped when the on-disk state format changes incompatibly.
	stateVersion = 1
)

// Status values, as the runtime-spec names them.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
	StatusPaused   = "paused"
)

// record is what the state directory remembers about a container between commands. The status is
// not stored but derived (see Container.Status): the container's processes change it without telling
// anyone.
type record struct {
	Version  int               `json:"version"`
	ID       string            `json:"id"`
	Bundle   string            `json:"bundle"`
	Rootfs   string            `json:"rootfs"`
	Created  time.Time         `json:"created"`
	Owner    string            `json:"owner"`
	Pid      int               `json:"pid,omitempty"`
	PidStart uint64            `json:"pidStart,omitempty"` // start time of Pid in clock ticks, to tell a reused pid
	Creating bool              `json:"creating,omitempty"` // the init has not reported ready yet
	Cgroups  map[string]string `json:"cgroups,omitempty"`
	Systemd  bool              `json:"systemd,omitempty"`
	NoPivot  bool              `json:"noPivot,omitempty"`
	// What the commands after create need of the spec, kept small: decoding the whole runtime-spec
	// type tree costs a millisecond or more at every start of the binary.
	Annotations map[string]string      `json:"annotations,omitempty"`
	Namespaces  []specs.LinuxNamespace `json:"namespaces,omitempty"`
	Poststart   []specs.Hook           `json:"poststart,omitempty"`
	Poststop    []specs.Hook           `json:"poststop,omitempty"`
	// Process is the config's process, the defaults of exec's command-line form, kept raw: encoding
	// it through its type would cost the type's encoder set-up at every create.
	Process json.RawMessage `json:"process,omitempty"`
	// Seccomp is the container's compiled filter, which every exec'd process gets too.
	Seccomp *seccompRecord `json:"seccomp,omitempty"`
	// Spec is the configuration as created (resources as last updated), decoded only by update.
	Spec json.RawMessage `json:"spec"`
}

// seccompRecord is a compiled seccomp filter as the state file keeps it.
type seccompRecord struct {
	Filter       []byte `json:"filter"` // struct sock_filter, 8 bytes each, little-endian
	Flags        uint   `json:"flags,omitempty"`
	Notify       bool   `json:"notify,omitempty"`
	ListenerPath string `json:"listenerPath,omitempty"`
	Metadata     string `json:"metadata,omitempty"`
}

func encodeFilter(prog []unix.SockFilter) []byte {
	b := make([]byte, 0, 8*len(prog))
	for _, f := range prog {
		b = binary.LittleEndian.AppendUint16(b, f.Code)
		b = append(b, f.Jt, f.Jf)
		b = binary.LittleEndian.AppendUint32(b, f.K)
	}
	return b
}

func decodeFilter(b []byte) []unix.SockFilter {
	prog := make([]unix.SockFilter, len(b)/8)
	for i := range prog {
		p := b[8*i:]
		prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(p), Jt: p[2], Jf: p[3], K: binary.LittleEndian.Uint32(p[4:])}
	}
	return prog
}

// summarize fills the small copies of the spec's fields; raw is the config as read.
func (r *record) summarize(s *specs.Spec, raw []byte) {
	r.Annotations = s.Annotations
	r.Namespaces = s.Linux.Namespaces
	r.Process = rawMember(raw, "process")
	if s.Hooks != nil {
		r.Poststart, r.Poststop = s.Hooks.Poststart, s.Hooks.Poststop
	}
}

// validIDByte is the character class of container ids, [A-Za-z0-9_+.-] (a loop rather than a
// regexp: compiling one is start-up work for every run of the binary, both halves included).
func validIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '+' || c == '.' || c == '-'
}

// ValidateID checks a container id: it becomes a directory name and a cgroup name.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("container id: %w: empty", ErrInvalid)
	case len(id) > 1024:
		return fmt.Errorf("container id: %w: longer than 1024 bytes", ErrInvalid)
	case id == "." || id == "..":
		return fmt.Errorf("container id %q: %w: use letters, digits and _ + . - only", id, ErrInvalid)
	}
	for i := 0; i < len(id); i++ {
		if !validIDByte(id[i]) {
			return fmt.Errorf("container id %q: %w: use letters, digits and _ + . - only", id, ErrInvalid)
		}
	}
	return nil
}

// writeRecord replaces the state file atomically. It is not fsynced on purpose: the state describes
// processes that do not survive a power cut, the state root is normally on tmpfs, and a rename is
// atomic against a SIGKILL of the writer, which is the crash that matters here.
func writeRecord(dir string, r *record) error {
	r.Version = stateVersion
	b := encodeRecord(r)
	// A fixed temporary name is enough: commands on one container do not write its state at once.
	tmp := filepath.Join(dir, ".state.tmp")
	if err := linux.CreateFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := unix.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		_ = unix.Unlink(tmp)
		return fmt.Errorf("write state: rename %s: %w", tmp, err)
	}
	return nil
}

func readRecord(dir string) (*record, error) {
	b, err := linux.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	r, err := decodeRecord(b)
	if err != nil {
		return nil, fmt.Errorf("state file %s is corrupt: %w", filepath.Join(dir, stateFile), err)
	}
	if r.Version != stateVersion {
		return nil, fmt.Errorf("state file %s has version %d, this runtime reads %d", filepath.Join(dir, stateFile), r.Version, stateVersion)
	}
	return r, nil
}

// procStat reads the state letter and start time of a process, or reports that it is gone.
func procStat(pid int) (state byte, start uint64, ok bool) {
	b, err := linux.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may contain anything, so parse from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+2:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], start, true
}

// alive reports whether pid is still the process that was recorded (not a zombie, not a reused pid).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, s, ok := procStat(pid)
	if !ok || st == 'Z' || st == 'X' {
		return false
	}
	return start == 0 || s == start
}
