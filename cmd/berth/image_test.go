package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/testimage"
)

// berth runs the CLI in-process and returns its stdout; a non-zero status fails the test.
func berth(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("berth %s: status %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

func berthFails(t *testing.T, want string, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code == 0 || !strings.Contains(errb.String(), want) {
		t.Fatalf("berth %s: status %d, stderr %q; want a failure saying %q", strings.Join(args, " "), code, errb.String(), want)
	}
}

func readSpec(t *testing.T, bundle string) specs.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// The image verbs, end to end: import a root filesystem, list, tag, inspect, export to every
// format, bundle from the store and from each export, push to a registry and pull back, remove, gc.
func TestImageCommands(t *testing.T) {
	rootfs := t.TempDir()
	if err := testimage.Busybox(rootfs); err != nil {
		t.Skipf("no busybox root: %v", err)
	}
	state := t.TempDir()
	t.Setenv("BERTH_ROOT", state)
	out := t.TempDir()

	berth(t, "image", "import", "--cmd", `["/bin/sh","-c","echo hi"]`, "--env", "A=1", "--label", "k=v", "--workdir", "/tmp", rootfs, "box:1")
	berth(t, "image", "tag", "box:1", "localhost/box:2")
	ls := berth(t, "image", "ls", "-q")
	if ls != "box:1\nlocalhost/box:2\n" {
		t.Fatalf("ls -q:\n%s", ls)
	}
	var insp struct {
		Config struct {
			Config struct {
				Env    []string
				Labels map[string]string
			} `json:"config"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(berth(t, "image", "inspect", "box:1")), &insp); err != nil {
		t.Fatal(err)
	}
	if insp.Config.Config.Labels["k"] != "v" || insp.Config.Config.Env[0] != "A=1" {
		t.Fatalf("inspect: %+v", insp)
	}

	layout := filepath.Join(out, "layout")
	refs := []string{"oci:" + layout + ":v1", "oci-archive:" + filepath.Join(out, "a.tar"), "docker-archive:" + filepath.Join(out, "d.tar")}
	for _, r := range refs {
		berth(t, "image", "export", "box:1", r)
	}
	for i, src := range append([]string{"box:1"}, refs...) {
		bundle := filepath.Join(out, "bundle", string(rune('a'+i)))
		berth(t, "image", "bundle", src, bundle)
		s := readSpec(t, bundle)
		if strings.Join(s.Process.Args, " ") != "/bin/sh -c echo hi" || s.Process.Cwd != "/tmp" || s.Annotations["k"] != "v" {
			t.Errorf("bundle of %s: process %+v, annotations %v", src, s.Process, s.Annotations)
		}
		if _, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", "busybox")); err != nil {
			t.Errorf("bundle of %s: %v", src, err)
		}
	}
	// Arguments after the directory replace Cmd.
	b2 := filepath.Join(out, "bundle", "args")
	berth(t, "image", "bundle", "box:1", b2, "--", "/bin/true")
	if s := readSpec(t, b2); strings.Join(s.Process.Args, " ") != "/bin/true" {
		t.Errorf("args: %v", s.Process.Args)
	}
	berthFails(t, "not empty", "image", "bundle", "box:1", b2)
	berthFails(t, `no image "nope"`, "image", "bundle", "oci:"+layout+":nope", filepath.Join(out, "x"))
	berthFails(t, "not found", "image", "inspect", "missing:1")

	// Push to a registry and pull back under another name.
	srv, err := registry.New(context.Background(), registry.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")
	berth(t, "image", "push", "-q", "box:1", host+"/lib/box:1")
	berth(t, "image", "push", "-q", "oci:"+layout+":v1", host+"/lib/fromlayout:v1")
	berth(t, "image", "rm", "box:1", "localhost/box:2")
	if ls := berth(t, "image", "ls", "-q"); ls != "" {
		t.Fatalf("ls after rm: %q", ls)
	}
	berth(t, "image", "gc", "--grace", "1ns")
	berth(t, "image", "pull", "-q", host+"/lib/box:1")
	bundle := filepath.Join(out, "bundle", "pulled")
	berth(t, "image", "bundle", host+"/lib/box:1", bundle)
	if s := readSpec(t, bundle); s.Process.Env[1] != "A=1" {
		t.Errorf("pulled image env: %v", s.Process.Env)
	}
	berthFails(t, "MANIFEST_UNKNOWN", "image", "pull", "-q", host+"/lib/box:nope")
}

// mount assembles the image with overlayfs; writes stay in the snapshot; unmount drops them; gc
// prunes the unpacked layers once the image is gone.
func TestImageMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	rootfs := t.TempDir()
	if err := testimage.Busybox(rootfs); err != nil {
		t.Skipf("no busybox root: %v", err)
	}
	state := t.TempDir()
	t.Setenv("BERTH_ROOT", state)
	berth(t, "image", "import", "--cmd", "sh", rootfs, "box:1")
	for _, driver := range []string{"overlay", "copy"} {
		target := t.TempDir()
		berth(t, "image", "mount", "--driver", driver, "box:1", target)
		t.Cleanup(func() { berth(t, "image", "unmount", target) })
		if _, err := os.Stat(filepath.Join(target, "bin", "busybox")); err != nil {
			t.Fatalf("%s: %v", driver, err)
		}
		if err := os.WriteFile(filepath.Join(target, "scratch"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		berth(t, "image", "unmount", "--keep", target)
		if _, err := os.Stat(filepath.Join(target, "scratch")); err == nil {
			t.Fatalf("%s: the file is still there after unmount", driver)
		}
		berth(t, "image", "mount", "--driver", driver, "box:1", target)
		if _, err := os.Stat(filepath.Join(target, "scratch")); err != nil {
			t.Fatalf("%s: a kept snapshot lost its change: %v", driver, err)
		}
		berth(t, "image", "unmount", target)
	}
	berth(t, "image", "rm", "box:1")
	berth(t, "image", "gc", "--grace", "1ns")
	if ents, _ := os.ReadDir(filepath.Join(state, "snapshots", "layers")); len(ents) != 0 {
		t.Fatalf("%d unpacked layers left after gc", len(ents))
	}
}
