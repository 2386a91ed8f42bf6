package testimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/specdefault"
)

// BusyboxPath is where Debian's busybox-static installs a statically linked busybox.
const BusyboxPath = "/bin/busybox"

// ErrNoBusybox means the host has no static busybox; tests skip with this reason.
var ErrNoBusybox = errors.New("no static busybox at " + BusyboxPath + " (apt-get install busybox-static)")

// Busybox fills dir with a minimal root filesystem: busybox and every applet it lists as hard links
// (programs that look at their own name, and images that expect real files, both work), /etc/passwd
// and /etc/group with root, a user 1000 and nobody, and the usual empty directories.
func Busybox(dir string) error {
	if err := checkStatic(BusyboxPath); err != nil {
		return err
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "var/tmp", "run", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if err := os.Chmod(filepath.Join(dir, d), 0o1777); err != nil {
			return err
		}
	}
	bb := filepath.Join(dir, "bin/busybox")
	if err := copyFile(BusyboxPath, bb, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Link(bb, filepath.Join(dir, "bin", applet)); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("link applet %s: %w", applet, err)
		}
	}
	files := map[string]string{
		"etc/passwd":      "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":       "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
		"etc/hostname":    "berth\n",
		"etc/hosts":       "127.0.0.1 localhost\n::1 localhost\n",
		"etc/resolv.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.Chown(filepath.Join(dir, "home/user"), 1000, 1000)
}

// GoStatic compiles a Go main package (a directory or an import path resolvable from the current
// module) into a static binary at out.
func GoStatic(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-tags", "netgo osusergo", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, b)
	}
	return nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// BundleOptions shape a bundle's config.json.
type BundleOptions struct {
	Args     []string
	Env      []string
	Terminal bool
	// Edit, if set, changes the spec before it is written.
	Edit func(*specs.Spec)
}

// Bundle writes dir/config.json for a container whose root is rootfs (absolute, or relative to
// dir). It starts from the usual namespaces and mounts, without a terminal.
func Bundle(dir, rootfs string, o BundleOptions) (*specs.Spec, error) {
	s := specdefault.Spec()
	s.Root.Path = rootfs
	s.Root.Readonly = false
	s.Process.Terminal = o.Terminal
	if len(o.Args) > 0 {
		s.Process.Args = o.Args
	}
	s.Process.Env = append(s.Process.Env, o.Env...)
	if o.Edit != nil {
		o.Edit(s)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return s, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

func checkStatic(path string) error {
	b := make([]byte, 4096)
	f, err := os.Open(path)
	if err != nil {
		return ErrNoBusybox
	}
	defer f.Close()
	n, _ := f.Read(b)
	// A dynamically linked ELF names its interpreter (PT_INTERP): look for the loader's path.
	if n < 4 || string(b[:4]) != "\x7fELF" {
		return fmt.Errorf("%s is not an ELF binary: %w", path, ErrNoBusybox)
	}
	if strings.Contains(string(b[:n]), "/lib64/ld-linux") || strings.Contains(string(b[:n]), "/lib/ld-linux") {
		return fmt.Errorf("%s is dynamically linked: %w", path, ErrNoBusybox)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

func goArch() string { return goruntime.GOARCH }
