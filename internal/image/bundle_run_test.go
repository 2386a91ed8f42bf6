package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/testimage"
)

// runtimes returns the OCI runtimes to run bundles with: ours (from $BERTH_RUNTIME or the
// Makefile's bin/), runc and crun.
func runtimes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	ours := os.Getenv("BERTH_RUNTIME")
	if ours == "" {
		ours, _ = filepath.Abs("../../bin/berth-runtime")
	}
	if _, err := os.Stat(ours); err == nil {
		out["berth-runtime"] = ours
	} else {
		t.Logf("berth-runtime not built at %s (make build): not run", ours)
	}
	for _, rt := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(rt); err == nil {
			out[rt] = p
		} else {
			t.Logf("%s not installed (make deps installs it): not run", rt)
		}
	}
	return out
}

// A bundle made from an image runs, unchanged, under berth-runtime, runc and crun, with the
// image's user, working directory, environment and command.
func TestBundleRunsUnderEveryRuntime(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running containers needs root")
	}
	rts := runtimes(t)
	if len(rts) == 0 {
		t.Skip("no OCI runtime available")
	}
	ctx := context.Background()
	rootfs := t.TempDir()
	if err := testimage.Busybox(rootfs); err != nil {
		t.Skipf("no busybox root: %v", err)
	}
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\napp:x:1000:\nextra:x:2000:app\n"), 0o644)
	os.MkdirAll(filepath.Join(rootfs, "work"), 0o777)
	store, err := content.Open(ctx, content.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	desc, err := Build(ctx, store, rootfs, BuildOptions{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{`echo "$(id -u):$(id -g):$(id -G):$(pwd):$GREETING:$HOME"`},
		Env:        []string{"GREETING=hello"}, User: "app", WorkingDir: "/work",
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Resolve(ctx, StoreProvider{store}, "runnable", desc, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if err := Bundle(ctx, img, bundle, BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "1000:1000:1000 2000:/work:hello:/home/app"
	for name, bin := range rts {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			id := fmt.Sprintf("img-%s-%d", name, time.Now().UnixNano())
			t.Cleanup(func() { exec.Command(bin, "--root", state, "delete", "--force", id).Run() })
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, "--root", state, "run", "--bundle", bundle, id)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s run: %v: %s", name, err, stderr.String())
			}
			if got := strings.TrimSpace(stdout.String()); got != want {
				t.Fatalf("%s: the container printed %q, want %q", name, got, want)
			}
		})
	}
}
