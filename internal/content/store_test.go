package content

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func ingestFiles(t *testing.T, s *Store) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestIngestVerifies(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	data := []byte("layer data")
	d := descOf(data)
	for name, tc := range map[string]struct {
		desc ocispec.Descriptor
		data string
		want string
	}{
		"wrong digest": {ocispec.Descriptor{Digest: digest.FromString("other"), Size: d.Size}, string(data), "digest is"},
		"too short":    {d, "layer", "5 bytes, the descriptor says 10"},
		"too long":     {d, "layer data and more", "11 bytes, the descriptor says 10"},
		"bad digest":   {ocispec.Descriptor{Digest: "sha256:xyz", Size: 1}, "x", "digest \"sha256:xyz\""},
	} {
		err := s.Ingest(ctx, tc.desc, strings.NewReader(tc.data))
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an invalid argument saying %q", name, err, tc.want)
		}
		if ok, _ := s.Has(ctx, tc.desc); ok {
			t.Errorf("%s: the blob is in the store", name)
		}
	}
	if n := ingestFiles(t, s); n != 0 {
		t.Fatalf("%d ingest files left after refused writes", n)
	}
	if err := s.Ingest(ctx, d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	// Present already: the reader is not consumed.
	if err := s.Ingest(ctx, d, errReader{}); err != nil {
		t.Fatalf("second ingest of a present blob: %v", err)
	}
	got, err := s.ReadBlob(ctx, d, 1<<10)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v", got, err)
	}
	if _, err := s.ReadBlob(ctx, d, 4); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("ReadBlob over its limit: %v", err)
	}
	if _, err := s.OpenFile(digest.FromString("absent")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("open of an absent blob: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read") }

func TestConcurrentIngestOfOneBlob(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	d := descOf(data)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- s.Ingest(ctx, d, bytes.NewReader(data)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ReadBlob(ctx, d, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob after concurrent writes: %d bytes, %v", len(got), err)
	}
	if n := ingestFiles(t, s); n != 0 {
		t.Fatalf("%d ingest files left", n)
	}
}

func TestImagesAndGC(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	put := func(mt string, b []byte) ocispec.Descriptor {
		d, err := s.WriteBytes(ctx, mt, b)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	layer := put(ocispec.MediaTypeImageLayerGzip, []byte("layer"))
	config := put(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux"}`))
	mb, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}})
	manifest := put(ocispec.MediaTypeImageManifest, mb)
	ib, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{manifest}})
	index := put(ocispec.MediaTypeImageIndex, ib)
	orphan := put("application/octet-stream", []byte("nobody's"))

	if err := s.PutImage(ctx, Image{Name: "example/app:1", Target: index}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, Image{Name: "missing", Target: descOf([]byte("not stored"))}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("naming an absent target: %v", err)
	}
	img, err := s.Image(ctx, "example/app:1")
	if err != nil || img.Target.Digest != index.Digest || img.Created.IsZero() {
		t.Fatalf("Image: %+v, %v", img, err)
	}
	// A young orphan survives the default grace period.
	res, err := s.GC(ctx, GCOptions{})
	if err != nil || len(res.Blobs) != 0 {
		t.Fatalf("gc within the grace period: %+v, %v", res, err)
	}
	res, err = s.GC(ctx, GCOptions{DryRun: true, Grace: time.Nanosecond})
	if err != nil || len(res.Blobs) != 1 || res.Blobs[0] != orphan.Digest {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if ok, _ := s.Has(ctx, orphan); !ok {
		t.Fatal("a dry run removed a blob")
	}
	if _, err := s.GC(ctx, GCOptions{Grace: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []ocispec.Descriptor{layer, config, manifest, index} {
		if ok, _ := s.Has(ctx, d); !ok {
			t.Fatalf("gc removed %s, which the image references", d.Digest)
		}
	}
	if ok, _ := s.Has(ctx, orphan); ok {
		t.Fatal("gc kept the orphan")
	}
	if err := s.DeleteImage(ctx, "example/app:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteImage(ctx, "example/app:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	res, err = s.GC(ctx, GCOptions{Grace: time.Nanosecond})
	if err != nil || len(res.Blobs) != 4 {
		t.Fatalf("gc after the image went: %+v, %v", res, err)
	}
}

func TestSecondOpenWaitsForTheLock(t *testing.T) {
	root := t.TempDir()
	s, err := Open(context.Background(), Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(context.Background(), Config{Root: root, LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second open while the first holds the database: %v", err)
	}
}
