package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestBadInput: every malformed or invalid configuration gets an error naming the field, and
// leaves no state, cgroup or process behind.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		edit func(*specs.Spec)
		raw  string // config.json as is, instead of edit
		want string // in the error
	}{
		{name: "malformed json", raw: `{"ociVersion": "1.2.0", "process": {`, want: "malformed JSON"},
		{name: "wrong type", raw: `{"ociVersion": "1.2.0", "process": {"user": {"uid": "zero"}}}`, want: "process.user.uid"},
		{name: "oci version", edit: func(s *specs.Spec) { s.Version = "2.0.0" }, want: "ociVersion"},
		{name: "no args", edit: func(s *specs.Spec) { s.Process.Args = nil }, want: "process.args"},
		{name: "relative cwd", edit: func(s *specs.Spec) { s.Process.Cwd = "tmp" }, want: "process.cwd"},
		{name: "bad env", edit: func(s *specs.Spec) { s.Process.Env = []string{"NOEQUALS"} }, want: "process.env[0]"},
		{name: "unknown namespace", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "teleport"})
		}, want: "linux.namespaces[6].type"},
		{name: "duplicate namespace", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "pid"})
		}, want: "listed twice"},
		{name: "missing namespace path", edit: func(s *specs.Spec) {
			s.Linux.Namespaces[1].Path = "/proc/999999999/ns/net"
		}, want: "linux.namespaces[1].path"},
		{name: "bad mount option", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro,nosuid"}})
		}, want: "mounts[8].options[0]"},
		{name: "relative mount destination", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "mnt", Type: "tmpfs", Source: "tmpfs"})
		}, want: "mounts[8].destination"},
		{name: "filesystem refuses option", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuchoption=1"}})
		}, want: "mounts[8]"},
		{name: "bind without source", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Options: []string{"rbind"}})
		}, want: "mounts[8].source"},
		{name: "missing bind source", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/nonexistent/dir", Options: []string{"rbind"}})
		}, want: "mounts[8]"},
		{name: "unknown capability", edit: func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_TEST")
		}, want: "process.capabilities.bounding[3]"},
		{name: "unknown rlimit", edit: func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_SPEED", Soft: 1, Hard: 1}}
		}, want: "process.rlimits[0].type"},
		{name: "host sysctl", edit: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "10"} }, want: "vm.swappiness"},
		{name: "missing rootfs", edit: func(s *specs.Spec) { s.Root.Path = "/nonexistent/rootfs" }, want: "root.path"},
		{name: "no root", edit: func(s *specs.Spec) { s.Root = nil }, want: "root.path"},
		{name: "device type", edit: func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z", Major: 1, Minor: 1}}
		}, want: "linux.devices[0].type"},
		{name: "relative hook", edit: func(s *specs.Spec) {
			//lint:ignore SA1019 prestart is deprecated but still part of the runtime-spec, and validated
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "true"}}}
		}, want: "hooks.prestart[0].path"},
		{name: "failing hook", edit: func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
		}, want: "hooks.createRuntime[0]"},
		{name: "hostname without uts", edit: func(s *specs.Spec) {
			s.Hostname = "x"
			s.Linux.Namespaces = s.Linux.Namespaces[:3]
		}, want: "hostname"},
		{name: "missing program", edit: func(s *specs.Spec) { s.Process.Args = []string{"/nonexistent"} }, want: "process.args[0]"},
		{name: "apparmor", edit: func(s *specs.Spec) { s.Process.ApparmorProfile = "nope" }, want: "process.apparmorProfile"},
	}
	prefix := randomID("bad")
	before := snapshot(t, e, prefix)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := e.bundle([]string{"/checker", "exit", "0"}, c.edit)
			if c.raw != "" {
				if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(c.raw), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if c.name == "apparmor" {
				if _, err := os.Stat("/sys/kernel/security/apparmor"); err == nil {
					t.Skip("AppArmor is enabled here: the profile would be tried for real")
				}
			}
			id := prefix + "-" + strings.ReplaceAll(c.name, " ", "-")
			r := e.rt("create", "--bundle", b, id)
			_ = i
			if r.code == 0 {
				e.rt("delete", "--force", id)
				t.Fatalf("create succeeded")
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Fatalf("want the error to name %q, got %v", c.want, r)
			}
		})
	}
	checkNoLeftovers(t, before, settle(t, e, prefix))
}
