package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// cgroupMount is one cgroup or cgroup2 entry of /proc/self/mountinfo.
type cgroupMount struct {
	// mountpoint is where the hierarchy is mounted, as this process sees it.
	mountpoint string
	// root is the directory of the hierarchy that is mounted there ("/" unless a subtree was
	// bind-mounted or a cgroup namespace is in use).
	root string
	// v2 is true for cgroup2.
	v2 bool
	// controllers of a v1 hierarchy, from its super options, including "name=..." for named
	// hierarchies. Empty for cgroup2.
	controllers []string
}

// notControllers are the cgroup v1 super options that are mount flags, not controllers.
// Anything with "=" except name= is also a flag (release_agent=...). Everything else in the
// super options is a controller, so a controller added by a newer kernel is picked up.
var notControllers = map[string]bool{
	"rw": true, "ro": true, "noprefix": true, "clone_children": true, "xattr": true,
	"cpuset_v2_mode": true, "favordynmods": true, "all": true, "none": true,
}

// parseMountinfo returns the cgroup and cgroup2 mounts of a /proc/<pid>/mountinfo file, in
// file order. Lines that are not cgroup mounts are skipped without being validated; a
// malformed cgroup line is an error, because resolving paths from it would be guesswork.
func parseMountinfo(data []byte) ([]cgroupMount, error) {
	var mounts []cgroupMount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.Contains(line, " - cgroup") {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		tail := strings.Fields(post)
		if len(tail) < 1 || (tail[0] != "cgroup" && tail[0] != "cgroup2") {
			continue
		}
		head := strings.Fields(pre)
		if len(head) < 6 {
			return nil, fmt.Errorf("mountinfo line %d: %w: too few fields: %q", n, ErrInvalid, line)
		}
		root, err := unescapeMountinfo(head[3])
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: root: %w", n, err)
		}
		mp, err := unescapeMountinfo(head[4])
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: mount point: %w", n, err)
		}
		m := cgroupMount{mountpoint: mp, root: root, v2: tail[0] == "cgroup2"}
		if !m.v2 {
			if len(tail) < 3 {
				return nil, fmt.Errorf("mountinfo line %d: %w: no super options: %q", n, ErrInvalid, line)
			}
			for _, opt := range strings.Split(tail[2], ",") {
				switch {
				case opt == "" || notControllers[opt]:
				case strings.HasPrefix(opt, "name="):
					m.controllers = append(m.controllers, opt)
				case strings.Contains(opt, "="):
				default:
					m.controllers = append(m.controllers, opt)
				}
			}
			if len(m.controllers) == 0 {
				// A v1 hierarchy with neither a controller nor a name cannot be told apart
				// from another one; nothing joins it.
				continue
			}
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return mounts, nil
}

// unescapeMountinfo undoes the kernel's octal escaping of space, tab, newline and backslash
// (\040, \011, \012, \134) in mountinfo paths.
func unescapeMountinfo(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("%w: bad escape in %q", ErrInvalid, s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("%w: bad escape in %q", ErrInvalid, s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// parseProcCgroup parses /proc/<pid>/cgroup ("hierarchy-ID:controller-list:path" lines) into
// a map from each controller (and "name=..." for named v1 hierarchies) to the process's path
// in that hierarchy. The cgroup2 line ("0::/path") is returned under the key "". The path
// may itself contain ':', so only the first two separate fields.
func parseProcCgroup(data []byte) (map[string]string, error) {
	out := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("/proc/self/cgroup line %d: %w: %q", n, ErrInvalid, line)
		}
		if _, err := strconv.ParseUint(parts[0], 10, 32); err != nil {
			return nil, fmt.Errorf("/proc/self/cgroup line %d: %w: hierarchy id %q", n, ErrInvalid, parts[0])
		}
		p := parts[2]
		// A cgroup removed while we are in it (possible for a process that outlives its
		// container) is shown with this suffix; the path is still where we are.
		p = strings.TrimSuffix(p, " (deleted)")
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("/proc/self/cgroup line %d: %w: path %q is not absolute", n, ErrInvalid, p)
		}
		if parts[1] == "" {
			if parts[0] == "0" {
				out[""] = p
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "" {
				out[c] = p
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/self/cgroup: %w", err)
	}
	return out, nil
}
