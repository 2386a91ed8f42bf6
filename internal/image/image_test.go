package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

func host() ocispec.Platform {
	p := HostPlatform()
	return ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
}

func TestResolveChoosesThePlatform(t *testing.T) {
	l := newLayout(t)
	other := ocispec.Platform{OS: "linux", Architecture: "s390x"}
	if host().Architecture == "s390x" {
		other.Architecture = "ppc64le"
	}
	mOther := l.image(ocispec.ImageConfig{Cmd: []string{"other"}}, other, tarOf(t, f("which", "other")))
	mHost := l.image(ocispec.ImageConfig{Cmd: []string{"host"}}, host(), tarOf(t, f("which", "host")))
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{mOther, mHost}}
	idx.SchemaVersion = 2
	l.index(tagged(l.json(ocispec.MediaTypeImageIndex, idx), "multi"), tagged(mOther, "single"))

	img, dir := unpackRef(t, "oci:"+l.dir+":multi")
	if img.Config.Config.Cmd[0] != "host" {
		t.Fatalf("chose %v", img.Config.Config.Cmd)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "which")); string(b) != "host" {
		t.Fatalf("unpacked %q", b)
	}

	ctx := context.Background()
	lay, err := OpenLayout(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := lay.Find("multi")
	_, err = Resolve(ctx, lay, "multi", d, Platform{OS: "linux", Architecture: "mips"})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "linux/"+other.Architecture) {
		t.Fatalf("absent platform: %v", err)
	}
	if _, err := lay.Find("nope"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "multi") {
		t.Fatalf("absent tag: %v", err)
	}
	if _, err := lay.Find(""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("no tag in a layout of two: %v", err)
	}
}

func TestResolveRefusesBadDocuments(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	good := l.image(ocispec.ImageConfig{Cmd: []string{"x"}}, host(), tarOf(t, f("a", "a")))
	lay := &Layout{Dir: l.dir}
	// A descriptor whose digest does not match the blob.
	bad := good
	bad.Digest = l.blob("x", []byte("other")).Digest
	if _, err := Resolve(ctx, lay, "bad", bad, HostPlatform()); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("manifest of the wrong size: %v", err)
	}
	notJSON := l.blob(ocispec.MediaTypeImageManifest, []byte("{not json"))
	if _, err := Resolve(ctx, lay, "x", notJSON, HostPlatform()); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("malformed manifest: %v", err)
	}
	layer := l.blob(ocispec.MediaTypeImageLayerGzip, gz(t, tarOf(t, f("a", "a"))))
	if _, err := Resolve(ctx, lay, "x", layer, HostPlatform()); err == nil || !strings.Contains(err.Error(), "not a manifest or an index") {
		t.Fatalf("a layer as the target: %v", err)
	}
	cfg := l.json(ocispec.MediaTypeImageConfig, ocispec.Image{RootFS: ocispec.RootFS{Type: "layers"}})
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	md := l.json(ocispec.MediaTypeImageManifest, m)
	if _, err := Resolve(ctx, lay, "x", md, HostPlatform()); err == nil || !strings.Contains(err.Error(), "0 diff_ids for the manifest's 1 layers") {
		t.Fatalf("diff_ids and layers disagree: %v", err)
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]Ref{
		"oci:/a/b:v1":                      {Transport: TransportOCI, Path: "/a/b", Name: "v1"},
		"oci:/a/b":                         {Transport: TransportOCI, Path: "/a/b"},
		"oci-archive:x.tar":                {Transport: TransportOCIArchive, Path: "x.tar"},
		"docker-archive:x.tar:busybox:1.0": {Transport: TransportDockerArchive, Path: "x.tar", Name: "busybox:1.0"},
		"docker://localhost:5000/app:1":    {Transport: TransportDocker, Name: "localhost:5000/app:1"},
		"app":                              {Name: "app:latest"},
		"localhost:5000/app:2":             {Name: "localhost:5000/app:2"},
	} {
		got, err := ParseRef(in)
		if err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"oci:", "UPPER", "a b", "app:bad tag", ""} {
		if _, err := ParseRef(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseRef(%q): %v, want an invalid argument", bad, err)
		}
	}
}
