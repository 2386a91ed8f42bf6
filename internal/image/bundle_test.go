package image

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// A bundle holds config.json and rootfs and nothing else (the staging directory is gone); a failed
// one leaves nothing, and an existing empty directory is used as it is.
func TestBundleLeavesOnlyTheBundle(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	m := l.image(ocispec.ImageConfig{Cmd: []string{"/bin/x"}}, host(), tarOf(t, d("etc"), f("etc/hostname", "box\n")))
	l.index(tagged(m, "v1"))
	lay, err := OpenLayout(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Resolve(ctx, lay, "v1", m, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	o := BundleOptions{Unpack: UnpackOptions{NoChown: os.Geteuid() != 0}}
	for _, pre := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "bundle")
		if pre {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := Bundle(ctx, img, dir, o); err != nil {
			t.Fatal(err)
		}
		if got := dirNames(t, dir); !slices.Equal(got, []string{"config.json", "rootfs"}) {
			t.Fatalf("bundle holds %v", got)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "rootfs", "etc", "hostname")); string(b) != "box\n" {
			t.Fatalf("rootfs: %q", b)
		}
	}
	// A layer that is not there: the bundle directory the call made is gone again.
	broken := *img
	broken.Manifest.Layers = append([]ocispec.Descriptor(nil), img.Manifest.Layers...)
	broken.Manifest.Layers[0].Digest = "sha256:" + "0000000000000000000000000000000000000000000000000000000000000000"
	parent := t.TempDir()
	if err := Bundle(ctx, &broken, filepath.Join(parent, "bundle"), o); err == nil {
		t.Fatal("a bundle with a missing layer succeeded")
	}
	if got := dirNames(t, parent); len(got) != 0 {
		t.Fatalf("a failed bundle left %v", got)
	}
}
