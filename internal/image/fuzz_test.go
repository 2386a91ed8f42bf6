package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// memProvider serves blobs from memory.
type memProvider map[digest.Digest][]byte

func (m memProvider) Open(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	b, ok := m[d.Digest]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// FuzzResolve: whatever a manifest or index and a config hold, Resolve returns an image whose
// layers and diff_ids agree, or an error; it never panics.
func FuzzResolve(f *testing.F) {
	f.Fuzz(func(t *testing.T, top, cfg []byte) {
		p := memProvider{digest.FromBytes(top): top, digest.FromBytes(cfg): cfg}
		for _, mt := range []string{"", ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex} {
			img, err := Resolve(context.Background(), p, "fuzz", ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(top), Size: int64(len(top))}, HostPlatform())
			if err != nil {
				continue
			}
			if len(img.Layers()) != len(img.Config.RootFS.DiffIDs) {
				t.Fatalf("%d layers, %d diff_ids", len(img.Layers()), len(img.Config.RootFS.DiffIDs))
			}
		}
	})
}

// FuzzDockerArchive: any manifest.json in a docker-archive is read or refused, never a panic, and
// Find of what it lists works.
func FuzzDockerArchive(f *testing.F) {
	f.Fuzz(func(t *testing.T, manifest []byte) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		add := func(name string, b []byte) {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
			tw.Write(b)
		}
		add("manifest.json", manifest)
		add("config.json", []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:`+digest.FromString("l").Encoded()+`"]}}`))
		add("layer.tar", make([]byte, 1024))
		tw.Close()
		file := filepath.Join(t.TempDir(), "d.tar")
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := OpenDockerArchive(file)
		if err != nil {
			return
		}
		defer a.Close()
		for _, tags := range a.Tags() {
			for _, tag := range tags {
				if _, err := a.Find(tag); err != nil {
					t.Fatalf("Find(%q) of a listed tag: %v", tag, err)
				}
			}
		}
	})
}
