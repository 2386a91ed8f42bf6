package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tentry is a layer entry for tests.
type tentry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func f(name, body string) tentry {
	return tentry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func d(name string) tentry { return tentry{name: name, typ: tar.TypeDir, mode: 0o755} }
func sl(name, target string) tentry {
	return tentry{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}

func tarOf(t testing.TB, es ...tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// testLayout writes an OCI layout with blobs and an index.json listing entries.
type testLayout struct {
	t   testing.TB
	dir string
}

func newLayout(t testing.TB) *testLayout {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return &testLayout{t: t, dir: dir}
}

func (l *testLayout) blob(mt string, b []byte) ocispec.Descriptor {
	dg := digest.FromBytes(b)
	p := filepath.Join(l.dir, "blobs", "sha256", dg.Encoded())
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dg, Size: int64(len(b))}
}

func (l *testLayout) json(mt string, v any) ocispec.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.blob(mt, b)
}

// image writes a manifest for the given uncompressed layer tars (stored gzipped) and config.
func (l *testLayout) image(cfg ocispec.ImageConfig, p ocispec.Platform, layers ...[]byte) ocispec.Descriptor {
	img := ocispec.Image{Platform: p, Config: cfg, RootFS: ocispec.RootFS{Type: "layers"}}
	var descs []ocispec.Descriptor
	for _, tb := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, digest.FromBytes(tb))
		descs = append(descs, l.blob(ocispec.MediaTypeImageLayerGzip, gz(l.t, tb)))
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: l.json(ocispec.MediaTypeImageConfig, img), Layers: descs}
	m.SchemaVersion = 2
	md := l.json(ocispec.MediaTypeImageManifest, m)
	md.Platform = &p
	return md
}

func (l *testLayout) index(entries ...ocispec.Descriptor) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: entries}
	idx.SchemaVersion = 2
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func tagged(d ocispec.Descriptor, tag string) ocispec.Descriptor {
	d.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	return d
}

// listTree lists root as sorted "path kind [content|target]" lines.
func listTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			out = append(out, rel+" l "+tgt)
		case fi.IsDir():
			out = append(out, rel+" d")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+" f "+string(b))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func unpackRef(t testing.TB, ref string) (*Image, string) {
	t.Helper()
	ctx := context.Background()
	r, err := ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	img, err := Resolve(ctx, src, ref, src.Target, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Unpack(ctx, img.Provider, img.Layers(), dir, UnpackOptions{NoChown: os.Geteuid() != 0}); err != nil {
		t.Fatal(err)
	}
	return img, dir
}

func joinLines(s []string) string { return strings.Join(s, "\n") }
