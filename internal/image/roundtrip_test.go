package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/testimage"
)

// An image built from a directory goes to a layout, an oci-archive and a docker-archive, and each
// unpacks to the same tree; built twice reproducibly, it has the same digest.
func TestBuildExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(src, "bin"), []byte("#!/bin/sh\n"), 0o755)
	os.Link(filepath.Join(src, "bin"), filepath.Join(src, "hard"))
	os.Symlink("etc/passwd", filepath.Join(src, "link"))
	want := listTree(t, src)

	store, err := content.Open(ctx, content.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	epoch := time.Unix(0, 0)
	o := BuildOptions{Cmd: []string{"/bin"}, Env: []string{"A=1"}, Created: &epoch, Reproducible: true}
	m1, err := Build(ctx, store, src, o)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Build(ctx, store, src, o)
	if err != nil {
		t.Fatal(err)
	}
	if m1.Digest != m2.Digest {
		t.Fatalf("reproducible builds differ: %s, %s", m1.Digest, m2.Digest)
	}
	if err := store.PutImage(ctx, content.Image{Name: "rt:1", Target: m1}); err != nil {
		t.Fatal(err)
	}
	img, err := Resolve(ctx, StoreProvider{store}, "rt:1", m1, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, ref := range []string{"oci:" + filepath.Join(out, "layout") + ":v1", "oci-archive:" + filepath.Join(out, "a.tar") + ":v1", "docker-archive:" + filepath.Join(out, "d.tar") + ":rt:1"} {
		r, err := ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := Export(ctx, img.Provider, img.Target, img, r); err != nil {
			t.Fatalf("export %s: %v", ref, err)
		}
		got, dir := unpackRef(t, ref)
		if joinLines(listTree(t, dir)) != joinLines(want) {
			t.Errorf("%s unpacked:\n%s\nwant:\n%s", ref, joinLines(listTree(t, dir)), joinLines(want))
		}
		if got.Config.RootFS.DiffIDs[0] != img.Config.RootFS.DiffIDs[0] || got.Config.Config.Env[0] != "A=1" {
			t.Errorf("%s: config %+v", ref, got.Config)
		}
		// Imported back into a store, it keeps its digest (the docker-archive's manifest is rebuilt).
		src, err := Open(ctx, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := CopyToStore(ctx, src, src.Target, store); err != nil {
			t.Fatalf("import %s: %v", ref, err)
		}
		if r.Transport != TransportDockerArchive && src.Target.Digest != m1.Digest {
			t.Errorf("%s: target %s, want %s", ref, src.Target.Digest, m1.Digest)
		}
		src.Close()
	}
	// A second tag in the same layout keeps the first.
	r, _ := ParseRef("oci:" + filepath.Join(out, "layout") + ":v2")
	if err := Export(ctx, img.Provider, img.Target, img, r); err != nil {
		t.Fatal(err)
	}
	lay, err := OpenLayout(filepath.Join(out, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lay.Index.Manifests) != 2 {
		t.Fatalf("layout index after two tags: %+v", lay.Index.Manifests)
	}
}

// The archives the test helpers write (the shapes skopeo and docker save produce) are read in place.
func TestReadHelperArchives(t *testing.T) {
	root := t.TempDir()
	if err := testimage.Busybox(root); err != nil {
		t.Skipf("no busybox root: %v", err)
	}
	out := t.TempDir()
	cfg := testimage.ImageConfig{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "echo hi"}}
	if err := testimage.OCIArchive(root, filepath.Join(out, "o.tar"), "bb", cfg); err != nil {
		t.Fatal(err)
	}
	if err := testimage.DockerArchive(root, filepath.Join(out, "d.tar"), "busybox:latest", cfg); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"oci-archive:" + filepath.Join(out, "o.tar") + ":bb", "docker-archive:" + filepath.Join(out, "d.tar"), "docker-archive:" + filepath.Join(out, "d.tar") + ":busybox:latest"} {
		img, dir := unpackRef(t, ref)
		if _, err := os.Stat(filepath.Join(dir, "bin", "sh")); err != nil {
			t.Errorf("%s: no /bin/sh: %v", ref, err)
		}
		if img.Config.Config.Entrypoint[0] != "/bin/sh" {
			t.Errorf("%s: config %+v", ref, img.Config.Config)
		}
	}
}
