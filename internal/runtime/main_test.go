package runtime_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testimage"
)

// The integration tests drive the berth-runtime binary as containerd or podman would, against the
// real kernel, and look inside containers with the checker. They need root; without it they skip.

var (
	runtimeBin string // the berth-runtime built for this run
	rootfs     string // a busybox root with /checker, shared read-only by the tests
	skipReason string
)

func TestMain(m *testing.M) {
	if os.Getenv(subreaperEnv) != "" {
		os.Exit(subreap(os.Args[1:]))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		skipReason = "integration tests need root (namespaces, cgroups, mounts)"
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "berth-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	runtimeBin = filepath.Join(dir, "berth-runtime")
	if p := os.Getenv("BERTH_RUNTIME"); p != "" {
		runtimeBin = p
	} else if err := buildRuntime(ctx, runtimeBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rootfs = filepath.Join(dir, "rootfs")
	if err := testimage.Busybox(rootfs); err != nil {
		if errors.Is(err, testimage.ErrNoBusybox) {
			skipReason = err.Error()
			return m.Run()
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := testimage.GoStatic(ctx, "github.com/berth-dev/berth/internal/testimage/checker", filepath.Join(rootfs, "checker")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	// The containers' shared parent cgroup, when it is empty (other containers' cgroups, even
	// stopped ones, keep it).
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	for _, d := range append(dirs, "/sys/fs/cgroup/berth") {
		_ = syscall.Rmdir(d)
	}
	return code
}

// buildRuntime builds the binary as the Makefile does (static, with the cgo constructor).
func buildRuntime(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "netgo osusergo",
		"-ldflags", `-linkmode external -extldflags "-static"`, "-o", out, "github.com/berth-dev/berth/cmd/berth-runtime")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build berth-runtime: %w: %s", err, b)
	}
	return nil
}

func needRoot(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// env is one test's runtime: its own state root, so tests can run in parallel.
type env struct {
	t    *testing.T
	root string
	bin  string // the runtime binary to run (runtimeBin unless a test uses a copy)
}

func newEnv(t *testing.T) *env {
	needRoot(t)
	return &env{t: t, root: t.TempDir(), bin: runtimeBin}
}

func randomID(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// rt runs berth-runtime with the env's root.
func (e *env) rt(args ...string) result {
	e.t.Helper()
	return e.rtIn("", nil, args...)
}

func (e *env) rtIn(dir string, stdin []byte, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append([]string{"--root", e.root}, args...)...)
	cmd.Dir = dir
	// Files, not pipes: a container started by create or run -d inherits the runtime's stdio and
	// would keep a pipe open, and Wait with it, until it exits.
	out, errb := tempFile(e.t), tempFile(e.t)
	defer out.Close()
	defer errb.Close()
	cmd.Stdout, cmd.Stderr = out, errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			e.t.Fatalf("run berth-runtime %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{readAll(e.t, out), readAll(e.t, errb), code}
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out-")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// must runs a command that must succeed.
func (e *env) must(args ...string) result {
	e.t.Helper()
	r := e.rt(args...)
	if r.code != 0 {
		e.t.Fatalf("berth-runtime %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// bundle writes a bundle over the shared rootfs (read-only, with a tmpfs on /tmp).
func (e *env) bundle(args []string, edit func(*specs.Spec)) string {
	e.t.Helper()
	dir := e.t.TempDir()
	_, err := testimage.Bundle(dir, rootfs, testimage.BundleOptions{Args: args, Edit: func(s *specs.Spec) {
		s.Root.Readonly = true
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
		s.Process.Rlimits = nil
		if edit != nil {
			edit(s)
		}
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// create creates a container and arranges for it to be force-deleted at the end of the test.
func (e *env) create(id, bundle string, extra ...string) {
	e.t.Helper()
	e.t.Cleanup(func() { e.rt("delete", "--force", id) })
	e.must(append(append([]string{"create", "--bundle", bundle}, extra...), id)...)
}

func (e *env) state(id string) specs.State {
	e.t.Helper()
	r := e.must("state", id)
	var s specs.State
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("state %s: %v in %q", id, err, r.stdout)
	}
	return s
}

func (e *env) waitStatus(id string, want specs.ContainerState) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := e.state(id)
		if s.Status == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is %s, want %s", id, s.Status, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runOut runs a container in the foreground and returns its output.
func (e *env) runOut(args []string, edit func(*specs.Spec)) result {
	e.t.Helper()
	b := e.bundle(args, edit)
	return e.rt("run", "--bundle", b, randomID("run"))
}
