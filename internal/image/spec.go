package image

import (
	"fmt"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/specdefault"
)

const bundleSpecVersion = "1.0.2"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// SpecOptions adjust the runtime config made from an image.
type SpecOptions struct {
	// Args replace the image's Cmd (the Entrypoint stays), as `docker run IMAGE ARGS` does.
	Args []string
	// Entrypoint, when set, replaces the image's Entrypoint (and drops its Cmd unless Args are given).
	Entrypoint []string
	Terminal   bool
	// Rootless maps the caller to root in a user namespace (see specdefault.Rootless).
	Rootless bool
	UID, GID int // the caller, for Rootless
}

// Spec turns an image config into a runtime config for the rootfs at rootfs (already unpacked,
// where /etc/passwd and /etc/group are read), following the image-spec's conversion rules:
// Entrypoint+Cmd → args, Env (with a PATH if it has none), WorkingDir → cwd, User resolved, and
// labels, stop signal, exposed ports and platform → annotations.
func Spec(cfg ocispec.Image, rootfs string, o SpecOptions) (*specs.Spec, error) {
	s := specdefault.Spec()
	// The bundle uses nothing newer than runtime-spec 1.0.2, and says so: runtimes of a few years
	// ago (Debian 12's crun 1.8) refuse a version they do not know.
	s.Version = bundleSpecVersion
	s.Root.Path = "rootfs"
	s.Root.Readonly = false
	s.Process.Terminal = o.Terminal
	if !o.Terminal {
		s.Process.Env = nil
	}
	c := cfg.Config
	entry := c.Entrypoint
	cmd := c.Cmd
	if o.Entrypoint != nil {
		entry, cmd = o.Entrypoint, nil
	}
	if o.Args != nil {
		cmd = o.Args
	}
	s.Process.Args = append(append([]string{}, entry...), cmd...)
	if len(s.Process.Args) == 0 {
		return nil, fmt.Errorf("the image config has no Entrypoint and no Cmd: give a command: %w", errdefs.ErrInvalidArgument)
	}
	user, err := ResolveUser(rootfs, c.User)
	if err != nil {
		return nil, err
	}
	s.Process.User = specs.User{UID: user.UID, GID: user.GID, AdditionalGids: user.AdditionalGids}
	env := append([]string{}, c.Env...)
	if !hasEnv(env, "PATH") {
		env = append([]string{defaultPath}, env...)
	}
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME="+user.Home)
	}
	if o.Terminal && !hasEnv(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	s.Process.Env = env
	s.Process.Cwd = "/"
	if c.WorkingDir != "" {
		if !strings.HasPrefix(c.WorkingDir, "/") {
			return nil, fmt.Errorf("config.WorkingDir %q: expected an absolute path: %w", c.WorkingDir, errdefs.ErrInvalidArgument)
		}
		s.Process.Cwd = c.WorkingDir
	}
	ann := map[string]string{}
	for k, v := range c.Labels {
		ann[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			ann[k] = v
		}
	}
	set("org.opencontainers.image.stopSignal", c.StopSignal)
	set("org.opencontainers.image.os", cfg.OS)
	set("org.opencontainers.image.architecture", cfg.Architecture)
	set("org.opencontainers.image.variant", cfg.Variant)
	set("org.opencontainers.image.os.version", cfg.OSVersion)
	set("org.opencontainers.image.author", cfg.Author)
	if cfg.Created != nil {
		set("org.opencontainers.image.created", cfg.Created.UTC().Format("2006-01-02T15:04:05Z07:00"))
	}
	if len(c.ExposedPorts) > 0 {
		var ports []string
		for p := range c.ExposedPorts {
			ports = append(ports, p)
		}
		sort.Strings(ports)
		set("org.opencontainers.image.exposedPorts", strings.Join(ports, ","))
	}
	if len(ann) > 0 {
		s.Annotations = ann
	}
	if o.Rootless {
		specdefault.Rootless(s, o.UID, o.GID)
	}
	return s, nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}
