package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestUnpackFlattensLayers(t *testing.T) {
	l := newLayout(t)
	base := tarOf(t, d("etc"), f("etc/a", "a"), f("etc/keep", "keep"), d("gone"), f("gone/x", "x"),
		d("opq"), f("opq/old", "old"), d("dir"), f("dir/f", "f"), sl("link", "etc/a"))
	top := tarOf(t, f("etc/.wh.a", ""), f(".wh.gone", ""), f("opq/new", "new"), f("opq/.wh..wh..opq", ""),
		f("dir/f", "replaced"), f("etc/b", "b"))
	m := l.image(ocispec.ImageConfig{Cmd: []string{"x"}}, host(), base, top)
	l.index(tagged(m, "v1"))
	_, dir := unpackRef(t, "oci:"+l.dir+":v1")
	want := []string{"dir d", "dir/f f replaced", "etc d", "etc/b f b", "etc/keep f keep", "link l etc/a", "opq d", "opq/new f new"}
	if got := listTree(t, dir); joinLines(got) != joinLines(want) {
		t.Fatalf("tree:\n%s\nwant:\n%s", joinLines(got), joinLines(want))
	}
}

func TestUnpackVerifiesDigests(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	layer := tarOf(t, f("a", "a"))
	m := l.image(ocispec.ImageConfig{Cmd: []string{"x"}}, host(), layer)
	l.index(tagged(m, "v1"))
	lay, err := OpenLayout(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Resolve(ctx, lay, "v1", m, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	// The blob on disk is replaced by other content of the same size.
	layers := img.Layers()
	p := filepath.Join(l.dir, "blobs", "sha256", layers[0].Desc.Digest.Encoded())
	other := gz(t, tarOf(t, f("b", "b")))
	if err := os.WriteFile(p, other, 0o644); err != nil {
		t.Fatal(err)
	}
	layers[0].Desc.Size = int64(len(other))
	err = Unpack(ctx, lay, layers, t.TempDir(), UnpackOptions{NoChown: os.Geteuid() != 0})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "layer 0") || !strings.Contains(err.Error(), "blob digest is") {
		t.Fatalf("corrupted blob: %v", err)
	}
	// Right blob, wrong diff_id.
	good := l.blob(ocispec.MediaTypeImageLayerGzip, gz(t, layer))
	err = Unpack(ctx, lay, []Layer{{Desc: good, DiffID: digest.FromString("not it")}}, t.TempDir(), UnpackOptions{NoChown: os.Geteuid() != 0})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "diff_id") {
		t.Fatalf("wrong diff_id: %v", err)
	}
	// A layer that is not there.
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("absent"), Size: 3}
	err = Unpack(ctx, lay, []Layer{{Desc: good, DiffID: digest.FromBytes(layer)}, {Desc: missing}}, t.TempDir(), UnpackOptions{NoChown: os.Geteuid() != 0})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "layer 1") {
		t.Fatalf("missing layer: %v", err)
	}
}

func TestUnpackIsCancelled(t *testing.T) {
	l := newLayout(t)
	m := l.image(ocispec.ImageConfig{Cmd: []string{"x"}}, host(), tarOf(t, f("a", "a")), tarOf(t, f("b", "b")))
	lay := &Layout{Dir: l.dir}
	img, err := Resolve(context.Background(), lay, "x", m, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Unpack(ctx, lay, img.Layers(), t.TempDir(), UnpackOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled unpack: %v", err)
	}
}
