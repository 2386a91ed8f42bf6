package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/linux"
)

// ErrNotAvailable is wrapped by every error that says a controller, a hierarchy or a control
// file this request needs does not exist on this host (for example blkio.leaf_weight, which
// went away with the CFQ scheduler, or net_cls when no such hierarchy is mounted). The runtime
// reports it rather than pretending the setting was applied.
var ErrNotAvailable = errors.New("cgroup controller or file not available")

// ErrInvalid is wrapped by errors about values that no kernel would accept (a swap limit below
// the memory limit, a unified key that escapes the cgroup directory, ...).
var ErrInvalid = errors.New("invalid cgroup configuration")

// Hierarchy keys of Paths() that are not v1 controller names.
const (
	// KeyUnified is the cgroup2 hierarchy mounted beside v1 ones (hybrid layout).
	KeyUnified = "unified"
	// KeyV2 is the only hierarchy of a pure cgroup v2 host.
	KeyV2 = ""
	// KeySystemd is the named v1 hierarchy systemd uses for process tracking.
	KeySystemd = "name=systemd"
)

// Config says where the container's cgroup is.
type Config struct {
	// Path is linux.cgroupsPath. Absolute: taken relative to each hierarchy's root (mount
	// root). Relative: taken relative to the cgroup the calling process is in, per hierarchy
	// (read from /proc/self/cgroup), which is runc's cgroupfs behaviour. The runtime gives
	// "/berth/<id>" when the spec has none. It must not be empty, a hierarchy root, or
	// contain "..".
	Path string
	// Systemd selects the systemd driver ("slice:prefix:name" paths). It is not implemented:
	// New returns an error wrapping ErrNotAvailable that says so.
	Systemd bool
}

// Manager is the container's cgroup: one directory per hierarchy. It holds only paths, so it
// is cheap to rebuild with Load in every CLI invocation.
type Manager struct {
	// paths maps a hierarchy key (see Paths) to the absolute directory of the container's
	// cgroup in that hierarchy. Co-mounted controllers share one directory.
	paths map[string]string
}

// host is what New reads from the machine. Tests point it at a fake tree; production uses
// defaultHost. It is an argument, not a package variable, so tests can run in parallel.
type host struct {
	// root is prepended to the mount points found in mountinfo and to /run/systemd/system.
	root       string
	mountinfo  string
	procCgroup string
}

var defaultHost = host{root: "", mountinfo: "/proc/self/mountinfo", procCgroup: "/proc/self/cgroup"}

// New resolves the container's directory in every cgroup hierarchy of this host. It creates
// nothing; call Create for that.
func New(cfg Config) (*Manager, error) {
	return newManager(cfg, defaultHost)
}

func newManager(cfg Config, h host) (*Manager, error) {
	if cfg.Systemd {
		if _, err := os.Stat(filepath.Join(h.root, "/run/systemd/system")); err != nil {
			return nil, fmt.Errorf("linux.cgroupsPath: systemd cgroup driver requested but systemd is not running (no /run/systemd/system): %w", ErrNotAvailable)
		}
		return nil, fmt.Errorf("linux.cgroupsPath: the systemd cgroup driver is not implemented yet; use the cgroupfs driver: %w", ErrNotAvailable)
	}
	rel, err := cleanCgroupPath(cfg.Path)
	if err != nil {
		return nil, err
	}
	mi, err := linux.ReadFile(h.mountinfo)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	mounts, err := parseMountinfo(mi)
	if err != nil {
		return nil, err
	}
	var own map[string]string
	if !filepath.IsAbs(cfg.Path) {
		data, err := linux.ReadFile(h.procCgroup)
		if err != nil {
			return nil, fmt.Errorf("cgroups: %w", err)
		}
		if own, err = parseProcCgroup(data); err != nil {
			return nil, err
		}
	}
	hier := chooseHierarchies(mounts)
	if len(hier) == 0 {
		return nil, fmt.Errorf("cgroups: no cgroup hierarchy is mounted (%s): %w", h.mountinfo, ErrNotAvailable)
	}
	m := &Manager{paths: make(map[string]string, len(hier))}
	for key, mnt := range hier {
		base := "/"
		if own != nil {
			// /proc/self/cgroup names the v2 line "" and v1 hierarchies by controller.
			procKey := key
			if key == KeyUnified {
				procKey = ""
			}
			p, ok := own[procKey]
			if !ok {
				return nil, fmt.Errorf("linux.cgroupsPath: relative path %q: this process is in no cgroup of hierarchy %q (%s): %w", cfg.Path, key, h.procCgroup, ErrNotAvailable)
			}
			if base, err = underMountRoot(p, mnt.root); err != nil {
				return nil, fmt.Errorf("linux.cgroupsPath: relative path %q, hierarchy %q: %w", cfg.Path, key, err)
			}
		}
		m.paths[key] = filepath.Join(h.root, mnt.mountpoint, base, rel)
	}
	return m, nil
}

// cleanCgroupPath validates linux.cgroupsPath and returns it cleaned and without the leading
// slash. ".." is refused outright: an absolute path would have it silently dropped by
// Clean, and a relative one would leave the runtime's own cgroup, in both cases not what the
// config says.
func cleanCgroupPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("linux.cgroupsPath: %w: empty path", ErrInvalid)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("linux.cgroupsPath: %w: %q contains \"..\"", ErrInvalid, p)
	}
	c := strings.TrimPrefix(filepath.Clean("/"+p), "/")
	if c == "" {
		return "", fmt.Errorf("linux.cgroupsPath: %w: %q names a hierarchy root or the runtime's own cgroup", ErrInvalid, p)
	}
	return c, nil
}

// underMountRoot turns a path from /proc/self/cgroup (relative to the hierarchy root) into
// one relative to a mount whose root is mountRoot (the mountinfo root field).
func underMountRoot(p, mountRoot string) (string, error) {
	if mountRoot == "/" {
		return p, nil
	}
	if p == mountRoot {
		return "/", nil
	}
	if rest, ok := strings.CutPrefix(p, mountRoot+"/"); ok {
		return "/" + rest, nil
	}
	return "", fmt.Errorf("%w: our cgroup %q is outside the mounted part %q of the hierarchy", ErrNotAvailable, p, mountRoot)
}

// chooseHierarchies picks one mount per hierarchy key. When a hierarchy is mounted more than
// once, a mount of its root ("/") wins over a bind mount of a subtree, then the first in
// mountinfo order. A host is pure v2 when no v1 hierarchy carries a controller.
func chooseHierarchies(mounts []cgroupMount) map[string]cgroupMount {
	out := make(map[string]cgroupMount)
	better := func(key string, m cgroupMount) {
		if old, ok := out[key]; !ok || (old.root != "/" && m.root == "/") {
			out[key] = m
		}
	}
	pureV2 := true
	for _, m := range mounts {
		for _, c := range m.controllers {
			if !strings.HasPrefix(c, "name=") {
				pureV2 = false
			}
		}
	}
	for _, m := range mounts {
		switch {
		case m.v2 && pureV2:
			better(KeyV2, m)
		case m.v2:
			better(KeyUnified, m)
		case pureV2:
			// name=systemd beside a cgroup2 hierarchy that has the controllers: the
			// process tracking lives in cgroup2, nothing to do in the named one.
		default:
			for _, c := range m.controllers {
				// Named hierarchies other than systemd's belong to someone else.
				if strings.HasPrefix(c, "name=") && c != KeySystemd {
					continue
				}
				better(c, m)
			}
		}
	}
	return out
}

// Load rebuilds a Manager from the map Paths returned, as saved in the runtime's state
// file. It does not look at the host, so later CLI invocations see exactly the directories
// the container was created with.
func Load(paths map[string]string) *Manager {
	return &Manager{paths: maps.Clone(paths)}
}

// Paths returns hierarchy key → absolute directory. Keys are v1 controller names ("memory",
// "cpu", ...; co-mounted controllers each have a key, with the same directory),
// "name=systemd", "unified" for the cgroup2 hierarchy of a hybrid host, and "" for the
// single hierarchy of a pure v2 host. The map is a copy.
func (m *Manager) Paths() map[string]string {
	return maps.Clone(m.paths)
}

// IsV2 reports whether this is a pure cgroup v2 cgroup.
func (m *Manager) IsV2() bool {
	_, ok := m.paths[KeyV2]
	return ok
}

// dirs returns the distinct directories, sorted, so co-mounted hierarchies are visited once.
func (m *Manager) dirs() []string {
	var out []string
	for _, d := range m.paths {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// v2Dir returns the cgroup2 directory (pure v2 or hybrid's unified), if any.
func (m *Manager) v2Dir() (string, bool) {
	if d, ok := m.paths[KeyV2]; ok {
		return d, true
	}
	d, ok := m.paths[KeyUnified]
	return d, ok
}

// v2Controllers returns the controllers that the parent enabled for the cgroup at dir (its
// cgroup.controllers file).
func v2Controllers(dir string) ([]string, error) {
	s, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return nil, err
	}
	return strings.Fields(s), nil
}

// target says where one controller's settings go.
type target struct {
	dir string
	v2  bool
}

// controller finds where settings of controller ctrl go: its v1 hierarchy if there is one,
// otherwise a cgroup2 hierarchy where the controller is enabled for this cgroup. The hybrid
// unified hierarchy is used only for controllers no v1 hierarchy has, which is how the
// kernel splits them.
func (m *Manager) controller(ctrl string) (target, error) {
	if d, ok := m.paths[ctrl]; ok {
		return target{dir: d}, nil
	}
	d, ok := m.v2Dir()
	if !ok {
		return target{}, fmt.Errorf("no %s cgroup hierarchy is mounted: %w", ctrl, ErrNotAvailable)
	}
	ctrls, err := v2Controllers(d)
	if err != nil {
		return target{}, err
	}
	if !slices.Contains(ctrls, ctrl) {
		return target{}, fmt.Errorf("controller %s is not enabled for %s (cgroup.controllers: %q): %w", ctrl, d, strings.Join(ctrls, " "), ErrNotAvailable)
	}
	return target{dir: d, v2: true}, nil
}

// writeFile writes value to dir/file in one write(2), as cgroupfs wants: a value split over
// two writes is two values. os.File.Write retries EINTR. The error names the operation and
// the path ("write /sys/fs/cgroup/...: device or resource busy").
// It goes through package linux rather than os: a container start writes dozens of these.
func writeFile(dir, file, value string) error {
	return linux.WriteFile(filepath.Join(dir, file), []byte(value))
}

// readFile returns dir/file with surrounding white space trimmed.
func readFile(dir, file string) (string, error) {
	b, err := linux.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readUint reads a single number; "max" (v2's "no limit") reads as math.MaxUint64.
func readUint(dir, file string) (uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return 0, err
	}
	return parseUintOrMax(s, filepath.Join(dir, file))
}

func parseUintOrMax(s, where string) (uint64, error) {
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// v1 shows some unset values as -1 (e.g. cpu.cfs_quota_us).
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return math.MaxUint64, nil
		}
		return 0, fmt.Errorf("parse %s: %w", where, err)
	}
	return v, nil
}

// fieldErr names the spec field an error is about. A control file that does not exist in a
// cgroup directory that does exist means the kernel does not offer that knob, so such an
// error also wraps ErrNotAvailable.
func fieldErr(field string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.Is(err, fs.ErrNotExist) && errors.As(err, &pe) && !errors.Is(err, ErrNotAvailable) {
		if st, serr := os.Stat(filepath.Dir(pe.Path)); serr == nil && st.IsDir() {
			return fmt.Errorf("%s: %w (%w)", field, err, ErrNotAvailable)
		}
	}
	return fmt.Errorf("%s: %w", field, err)
}

// set writes one value and names the field in the error.
func set(field, dir, file, value string) error {
	return fieldErr(field, writeFile(dir, file, value))
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}
