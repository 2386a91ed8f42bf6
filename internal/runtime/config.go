package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/capabilities"
	"github.com/berth-dev/berth/internal/linux"
	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/nsexec"
	"github.com/berth-dev/berth/internal/specjson"
)

// LoadSpec reads and validates a bundle's config.json. It returns the raw bytes as well, so that the
// container half decodes exactly what was validated even if the file changes afterwards.
func LoadSpec(bundle string) (*specs.Spec, []byte, error) {
	path := filepath.Join(bundle, "config.json")
	raw, err := linux.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("bundle %s: %w: no config.json", bundle, ErrInvalid)
		}
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	var spec specs.Spec
	if err := specjson.Unmarshal(raw, &spec); err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %s", path, ErrInvalid, jsonError(raw, err))
	}
	if err := Validate(&spec); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return &spec, raw, nil
}

// jsonError turns a decoding error into one that says where and what, including the field for type
// errors ("process.user.uid: expected uint32, got a JSON string").
func jsonError(raw []byte, err error) string {
	var sse *specjson.SyntaxError
	if errors.As(err, &sse) {
		return fmt.Sprintf("malformed JSON at %v", sse)
	}
	var ste *specjson.TypeError
	if errors.As(err, &ste) {
		return ste.Error()
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + strings.Count(string(raw[:min(int(se.Offset), len(raw))]), "\n")
		return fmt.Sprintf("malformed JSON at line %d (byte %d): %v", line, se.Offset, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s: expected %s, got a JSON %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// invalid builds a validation error naming the config field.
func invalid(field, format string, a ...any) error {
	return fmt.Errorf("%s: %w: %s", field, ErrInvalid, fmt.Sprintf(format, a...))
}

// invalidError marks an error that already names its field (from another package's parser) as
// invalid input, without changing its text.
type invalidError struct{ error }

func (e invalidError) Unwrap() error        { return e.error }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// Validate checks a spec for what the runtime can know before creating anything.
func Validate(s *specs.Spec) error {
	if err := validateVersion(s.Version); err != nil {
		return err
	}
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path", "missing: a Linux container needs a root filesystem")
	}
	if s.Linux == nil {
		return invalid("linux", "missing: this runtime runs Linux containers")
	}
	if err := validateProcess("process", s.Process); err != nil {
		return err
	}
	ns, err := validateNamespaces(s.Linux)
	if err != nil {
		return err
	}
	if s.Hostname != "" && !ns.has(specs.UTSNamespace) {
		return invalid("hostname", "setting a hostname needs a uts namespace in linux.namespaces: it would change the host's")
	}
	if s.Domainname != "" && !ns.has(specs.UTSNamespace) {
		return invalid("domainname", "setting a domainname needs a uts namespace in linux.namespaces: it would change the host's")
	}
	for i, m := range s.Mounts {
		if err := validateMount(fmt.Sprintf("mounts[%d]", i), m); err != nil {
			return err
		}
	}
	if err := validateHooks(s.Hooks); err != nil {
		return err
	}
	return validateLinux(s.Linux, ns)
}

func validateVersion(v string) error {
	major, _, _ := strings.Cut(v, ".")
	if v == "" {
		return invalid("ociVersion", "missing")
	}
	if major != "1" {
		return invalid("ociVersion", "%q: this runtime implements runtime-spec 1.x", v)
	}
	return nil
}

var rlimitNames = map[string]bool{
	"RLIMIT_AS": true, "RLIMIT_CORE": true, "RLIMIT_CPU": true, "RLIMIT_DATA": true, "RLIMIT_FSIZE": true,
	"RLIMIT_LOCKS": true, "RLIMIT_MEMLOCK": true, "RLIMIT_MSGQUEUE": true, "RLIMIT_NICE": true,
	"RLIMIT_NOFILE": true, "RLIMIT_NPROC": true, "RLIMIT_RSS": true, "RLIMIT_RTPRIO": true,
	"RLIMIT_RTTIME": true, "RLIMIT_SIGPENDING": true, "RLIMIT_STACK": true,
}

func validateProcess(field string, p *specs.Process) error {
	if p == nil {
		return nil
	}
	if len(p.Args) == 0 {
		return invalid(field+".args", "missing: the process needs at least one argument, the program to run")
	}
	if p.Args[0] == "" {
		return invalid(field+".args[0]", "empty program name")
	}
	if p.Cwd == "" {
		return invalid(field+".cwd", "missing")
	}
	if !filepath.IsAbs(p.Cwd) {
		return invalid(field+".cwd", "%q is not an absolute path", p.Cwd)
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return invalid(fmt.Sprintf("%s.env[%d]", field, i), "%q is not KEY=value", e)
		}
		if strings.ContainsRune(e, 0) {
			return invalid(fmt.Sprintf("%s.env[%d]", field, i), "contains a NUL byte")
		}
	}
	if p.ConsoleSize != nil && !p.Terminal {
		return invalid(field+".consoleSize", "set without process.terminal")
	}
	seen := map[string]bool{}
	for i, r := range p.Rlimits {
		f := fmt.Sprintf("%s.rlimits[%d]", field, i)
		if !rlimitNames[r.Type] {
			return invalid(f+".type", "unknown rlimit %q", r.Type)
		}
		if seen[r.Type] {
			return invalid(f+".type", "%s is given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return invalid(f, "soft limit %d is above the hard limit %d", r.Soft, r.Hard)
		}
	}
	if _, err := capabilities.FromSpec(p.Capabilities); err != nil {
		return invalidError{err}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return invalid(field+".oomScoreAdj", "%d is outside -1000..1000", *p.OOMScoreAdj)
	}
	if p.Scheduler != nil {
		if _, ok := schedPolicies[p.Scheduler.Policy]; !ok {
			return invalid(field+".scheduler.policy", "unknown policy %q", p.Scheduler.Policy)
		}
		for i, fl := range p.Scheduler.Flags {
			if _, ok := schedFlags[fl]; !ok {
				return invalid(fmt.Sprintf("%s.scheduler.flags[%d]", field, i), "unknown flag %q", fl)
			}
		}
		if p.Scheduler.Nice < -20 || p.Scheduler.Nice > 19 {
			return invalid(field+".scheduler.nice", "%d is outside -20..19", p.Scheduler.Nice)
		}
	}
	if p.IOPriority != nil {
		if _, ok := ioprioClasses[p.IOPriority.Class]; !ok {
			return invalid(field+".ioPriority.class", "unknown class %q", p.IOPriority.Class)
		}
		if p.IOPriority.Priority < 0 || p.IOPriority.Priority > 7 {
			return invalid(field+".ioPriority.priority", "%d is outside 0..7", p.IOPriority.Priority)
		}
	}
	if a := p.ExecCPUAffinity; a != nil {
		if _, err := parseCPUList(a.Initial); a.Initial != "" && err != nil {
			return invalid(field+".execCPUAffinity.initial", "%v", err)
		}
		if _, err := parseCPUList(a.Final); a.Final != "" && err != nil {
			return invalid(field+".execCPUAffinity.final", "%v", err)
		}
	}
	return nil
}

// namespaces is the validated namespace list: for each type, whether it is listed and its path.
type namespaces map[specs.LinuxNamespaceType]string

func (n namespaces) has(t specs.LinuxNamespaceType) bool { _, ok := n[t]; return ok }
func (n namespaces) isNew(t specs.LinuxNamespaceType) bool {
	p, ok := n[t]
	return ok && p == ""
}

func validateNamespaces(l *specs.Linux) (namespaces, error) {
	ns := namespaces{}
	for i, n := range l.Namespaces {
		f := fmt.Sprintf("linux.namespaces[%d]", i)
		if _, ok := nsexec.CloneFlag(n.Type); !ok {
			return nil, invalid(f+".type", "unknown namespace type %q (want pid, network, mount, ipc, uts, user, cgroup or time)", n.Type)
		}
		if ns.has(n.Type) {
			return nil, invalid(f+".type", "namespace %q is listed twice", n.Type)
		}
		if n.Path != "" && !filepath.IsAbs(n.Path) {
			return nil, invalid(f+".path", "%q is not an absolute path", n.Path)
		}
		if n.Path != "" {
			if _, err := os.Stat(n.Path); err != nil {
				return nil, invalid(f+".path", "%v", err)
			}
		}
		ns[n.Type] = n.Path
	}
	if ns.isNew(specs.UserNamespace) && (len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0) {
		return nil, invalid("linux.uidMappings", "a new user namespace needs linux.uidMappings and linux.gidMappings")
	}
	if !ns.isNew(specs.UserNamespace) && (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) {
		return nil, invalid("linux.uidMappings", "mappings are given but no new user namespace is in linux.namespaces")
	}
	if len(l.TimeOffsets) > 0 && !ns.isNew(specs.TimeNamespace) {
		return nil, invalid("linux.timeOffsets", "time offsets need a new time namespace in linux.namespaces")
	}
	return ns, nil
}

func validateMount(field string, m specs.Mount) error {
	if m.Destination == "" {
		return invalid(field+".destination", "missing")
	}
	if !filepath.IsAbs(m.Destination) {
		return invalid(field+".destination", "%q is not an absolute path", m.Destination)
	}
	opts, err := mount.Parse(m.Options)
	if err != nil {
		return invalidError{fmt.Errorf("%s.%w", field, err)}
	}
	bind := opts.Bind() || m.Type == "bind"
	if bind && m.Source == "" {
		return invalid(field+".source", "a bind mount needs a source")
	}
	if !bind && m.Type == "" {
		return invalid(field+".type", "missing (only bind mounts may omit it)")
	}
	if (len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0) && !opts.IDMap {
		return invalid(field+".uidMappings", "mappings need the idmap or ridmap option")
	}
	if opts.IDMap && (len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0) {
		return invalid(field+".options", "idmap needs both uidMappings and gidMappings on the mount")
	}
	if opts.IDMap && !bind {
		return invalid(field+".options", "idmap is only supported on bind mounts")
	}
	return nil
}

func validateHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	for kind, list := range map[string][]specs.Hook{
		//lint:ignore SA1019 prestart is deprecated but still part of the runtime-spec
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
		"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
	} {
		for i, hk := range list {
			f := fmt.Sprintf("hooks.%s[%d]", kind, i)
			if !filepath.IsAbs(hk.Path) {
				return invalid(f+".path", "%q is not an absolute path", hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return invalid(f+".timeout", "%d is not a positive number of seconds", *hk.Timeout)
			}
		}
	}
	return nil
}

var propagations = map[string]bool{
	"": true, "shared": true, "slave": true, "private": true, "unbindable": true,
	"rshared": true, "rslave": true, "rprivate": true, "runbindable": true,
}

func validateLinux(l *specs.Linux, ns namespaces) error {
	if !propagations[l.RootfsPropagation] {
		return invalid("linux.rootfsPropagation", "unknown propagation %q", l.RootfsPropagation)
	}
	for i, p := range l.MaskedPaths {
		if !filepath.IsAbs(p) {
			return invalid(fmt.Sprintf("linux.maskedPaths[%d]", i), "%q is not an absolute path", p)
		}
	}
	for i, p := range l.ReadonlyPaths {
		if !filepath.IsAbs(p) {
			return invalid(fmt.Sprintf("linux.readonlyPaths[%d]", i), "%q is not an absolute path", p)
		}
	}
	for i, d := range l.Devices {
		f := fmt.Sprintf("linux.devices[%d]", i)
		if !filepath.IsAbs(d.Path) {
			return invalid(f+".path", "%q is not an absolute path", d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid(f+".type", "%q is not one of c, b, u, p", d.Type)
		}
		if d.Major < 0 || d.Minor < 0 {
			return invalid(f, "negative major or minor number")
		}
	}
	if l.Resources != nil {
		for i, d := range l.Resources.Devices {
			f := fmt.Sprintf("linux.resources.devices[%d]", i)
			switch d.Type {
			case "", "a", "c", "b":
			default:
				return invalid(f+".type", "%q is not one of a, c, b", d.Type)
			}
			if strings.Trim(d.Access, "rwm") != "" {
				return invalid(f+".access", "%q may only contain r, w and m", d.Access)
			}
		}
	}
	for k := range l.Sysctl {
		if err := validateSysctl(k, ns); err != nil {
			return err
		}
	}
	if err := validateMemoryPolicy(l.MemoryPolicy); err != nil {
		return err
	}
	if l.IntelRdt != nil {
		return fmt.Errorf("linux.intelRdt: %w: Intel RDT (resctrl) is not supported by this runtime", ErrNotSupported)
	}
	if len(l.NetDevices) > 0 {
		return fmt.Errorf("linux.netDevices: %w yet: attach the interfaces with a CNI plugin instead", ErrNotSupported)
	}
	if p := l.Personality; p != nil {
		if p.Domain != specs.PerLinux && p.Domain != specs.PerLinux32 {
			return invalid("linux.personality.domain", "%q is not LINUX or LINUX32", p.Domain)
		}
		if len(p.Flags) > 0 {
			return invalid("linux.personality.flags", "no personality flags are defined by the runtime-spec yet")
		}
	}
	return nil
}

// validateSysctl accepts only sysctls that are namespaced by a namespace the container has of its
// own: anything else would change the host.
func validateSysctl(key string, ns namespaces) error {
	f := "linux.sysctl[" + strconv.Quote(key) + "]"
	if key == "" || strings.Contains(key, "..") || strings.ContainsAny(key, "\x00") || strings.HasPrefix(key, "/") {
		return invalid(f, "not a sysctl name")
	}
	k := strings.ReplaceAll(key, "/", ".")
	switch {
	case strings.HasPrefix(k, "net."):
		if !ns.isNew(specs.NetworkNamespace) && !ns.has(specs.NetworkNamespace) {
			return invalid(f, "net.* sysctls need the container's own network namespace")
		}
	case k == "kernel.msgmax", k == "kernel.msgmnb", k == "kernel.msgmni", k == "kernel.sem",
		k == "kernel.shmall", k == "kernel.shmmax", k == "kernel.shmmni", k == "kernel.shm_rmid_forced",
		strings.HasPrefix(k, "fs.mqueue."):
		if !ns.has(specs.IPCNamespace) {
			return invalid(f, "IPC sysctls need the container's own ipc namespace")
		}
	case k == "kernel.hostname", k == "kernel.domainname":
		if !ns.has(specs.UTSNamespace) {
			return invalid(f, "needs the container's own uts namespace")
		}
	default:
		return invalid(f, "not a namespaced sysctl: it would change the host")
	}
	return nil
}

// parseCPUList parses "0-3,5" into a list of CPU numbers.
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU range in %q", s)
			}
		}
		if b >= 8192 {
			return nil, fmt.Errorf("CPU %d in %q is too large", b, s)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
