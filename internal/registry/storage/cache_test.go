package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// cacheImage stores a one-layer image in repo through s and returns its manifest digest.
func cacheImage(t *testing.T, s *Store, repo, tag, layer string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	put := func(mt string, data []byte) ocispec.Descriptor {
		d := digest.FromBytes(data)
		if _, err := s.PutBlob(ctx, repo, d, int64(len(data)), bytes.NewReader(data)); err != nil {
			t.Fatalf("PutBlob: %v", err)
		}
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}
	}
	cfg := put(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	l := put(ocispec.MediaTypeImageLayer, []byte(layer))
	data, _ := json.Marshal(ocispec.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{l}})
	parsed, err := manifest.Parse(ocispec.MediaTypeImageManifest, data)
	if err != nil {
		t.Fatalf("manifest.Parse: %v", err)
	}
	d := digest.FromBytes(data)
	if err := s.PutManifest(ctx, repo, ManifestPut{Digest: d, MediaType: ocispec.MediaTypeImageManifest, Data: data, Parsed: parsed, Tags: []string{tag}}); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	return d
}

// Two stores on one root (two registry processes): what one writes, the other's cached read
// paths see at once — a tag moved, a manifest deleted, a tag deleted.
func TestReadCacheSeesOtherWriters(t *testing.T) {
	// cache at once, so that the second reads below come from the cache
	settle := cacheSettle
	cacheSettle = 0
	t.Cleanup(func() { cacheSettle = settle })
	ctx := context.Background()
	root := t.TempDir()
	a, err := Open(ctx, Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tag := reference.Reference{Tag: "v1"}

	d1 := cacheImage(t, a, "lib/app", "v1", "one")
	for range 2 { // the second read is served from b's cache
		m, err := b.GetManifest(ctx, "lib/app", tag)
		if err != nil || m.Digest != d1 || digest.FromBytes(m.Data) != d1 {
			t.Fatalf("GetManifest v1 = %v, %v; want %s", m, err, d1)
		}
	}
	d2 := cacheImage(t, a, "lib/app", "v1", "two")
	m, err := b.GetManifest(ctx, "lib/app", tag)
	if err != nil || m.Digest != d2 || digest.FromBytes(m.Data) != d2 {
		t.Fatalf("after the tag moved: GetManifest v1 = %v, %v; want %s", m, err, d2)
	}
	if m, err := b.StatManifest(ctx, "lib/app", reference.Reference{Digest: d1}); err != nil || m.Size == 0 {
		t.Fatalf("StatManifest by digest = %v, %v", m, err)
	}
	if err := a.DeleteManifest(ctx, "lib/app", d1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetManifest(ctx, "lib/app", reference.Reference{Digest: d1}); !errors.Is(err, ErrManifestUnknown) {
		t.Fatalf("deleted manifest: GetManifest = %v, want ErrManifestUnknown", err)
	}
	if _, err := b.StatManifest(ctx, "lib/app", reference.Reference{Digest: d1}); !errors.Is(err, ErrManifestUnknown) {
		t.Fatalf("deleted manifest: StatManifest = %v, want ErrManifestUnknown", err)
	}
	if err := a.DeleteTag(ctx, "lib/app", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetManifest(ctx, "lib/app", tag); !errors.Is(err, ErrManifestUnknown) {
		t.Fatalf("deleted tag: GetManifest = %v, want ErrManifestUnknown", err)
	}
}

// The manifest cache stays within its byte budget.
func TestManifestCacheBound(t *testing.T) {
	var c manifests
	entry := make([]byte, manifestEntryMax)
	for i := range 3 * manifestCacheMax / manifestEntryMax {
		c.put(digest.FromBytes([]byte{byte(i), byte(i >> 8)}).String(), entry)
		if c.bytes > manifestCacheMax {
			t.Fatalf("after %d puts the cache holds %d bytes, over %d", i+1, c.bytes, manifestCacheMax)
		}
	}
	c.put("too-big", make([]byte, manifestEntryMax+1))
	if c.get("too-big") != nil {
		t.Error("an entry over manifestEntryMax was cached")
	}
}
