package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/reference"
)

func openStore(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Root: root})
	if err != nil {
		t.Fatalf("Open(%s): %v", root, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

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

// putImage stores blobs and a manifest referring to them; it returns the manifest's digest.
func putImage(t *testing.T, s *Store, repo, tag string, subject *ocispec.Descriptor, blobs ...[]byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	m := ocispec.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Subject: subject, Layers: []ocispec.Descriptor{}}
	for i, b := range blobs {
		d := digest.FromBytes(b)
		if _, err := s.PutBlob(ctx, repo, d, int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(b))}
		if i == 0 {
			desc.MediaType = ocispec.MediaTypeImageConfig
			m.Config = desc
		} else {
			m.Layers = append(m.Layers, desc)
		}
	}
	data, _ := json.Marshal(m)
	parsed, err := manifest.Parse(ocispec.MediaTypeImageManifest, data)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	d := digest.FromBytes(data)
	if err := s.PutManifest(ctx, repo, ManifestPut{Digest: d, MediaType: parsed.MediaType, Data: data, Parsed: parsed, Tags: tags}); err != nil {
		t.Fatal(err)
	}
	return d
}

// The same blob written at once by many writers (monolithic and chunked), from two Store
// instances on one root as two processes would: all succeed, one copy, no leftovers.
func TestConcurrentSameBlob(t *testing.T) {
	root := t.TempDir()
	stores := []*Store{openStore(t, root), openStore(t, root)}
	data := random(t, 2<<20+5)
	d := digest.FromBytes(data)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[i%2]
			repo := fmt.Sprintf("r%d", i%4)
			if i%2 == 0 {
				if _, err := s.PutBlob(ctx, repo, d, int64(len(data)), bytes.NewReader(data)); err != nil {
					t.Errorf("PutBlob %d: %v", i, err)
				}
				return
			}
			id, err := s.NewUpload(ctx, repo)
			if err != nil {
				t.Error(err)
				return
			}
			half := int64(len(data) / 2)
			if _, err := s.WriteUpload(ctx, repo, id, 0, half, bytes.NewReader(data[:half])); err != nil {
				t.Errorf("WriteUpload %d: %v", i, err)
				return
			}
			if _, err := s.CommitUpload(ctx, repo, id, d, half, int64(len(data))-half, bytes.NewReader(data[half:])); err != nil {
				t.Errorf("CommitUpload %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for i := range 4 {
		f, size, err := stores[0].OpenBlob(ctx, fmt.Sprintf("r%d", i), d)
		if err != nil || size != int64(len(data)) {
			t.Fatalf("blob in r%d: %v, %d bytes", i, err, size)
		}
		got, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("blob in r%d does not read back", i)
		}
	}
	if n := dirNames(t, filepath.Join(root, "blobs", "sha256", d.Encoded()[:2])); len(n) != 1 {
		t.Errorf("blob shard holds %v", n)
	}
	if n := dirNames(t, filepath.Join(root, "uploads")); len(n) != 0 {
		t.Errorf("uploads left: %v", n)
	}
	for _, s := range stores {
		if n := dirNames(t, s.tmp); len(n) != 0 {
			t.Errorf("temporary files left in %s: %v", s.tmp, n)
		}
	}
}

// Open removes the temporary directories of processes that are gone (their flock is free) and
// keeps those of live ones.
func TestOpenRemovesCrashedTemporaryFiles(t *testing.T) {
	root := t.TempDir()
	live := openStore(t, root)
	if err := os.WriteFile(filepath.Join(live.tmp, "w-inflight"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "tmp", "0123456789abcdef0123456789abcdef")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(stale, "c-partial"), []byte("partial"), 0o600)
	_ = os.WriteFile(filepath.Join(root, "tmp", "stray"), nil, 0o600)
	second := openStore(t, root)
	names := dirNames(t, filepath.Join(root, "tmp"))
	want := map[string]bool{filepath.Base(live.tmp): true, filepath.Base(second.tmp): true}
	if len(names) != 2 || !want[names[0]] || !want[names[1]] {
		t.Fatalf("tmp/ after Open: %v, want the two live stores' directories", names)
	}
	if _, err := os.Stat(filepath.Join(live.tmp, "w-inflight")); err != nil {
		t.Errorf("a live store's temporary file was removed: %v", err)
	}
	// Close removes the store's own directory
	second.Close()
	if _, err := os.Stat(second.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s", second.tmp)
	}
}

// An upload being written is never purged, however old; a free one past the TTL is.
func TestPurgeUploadsSkipsBusy(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	ctx := context.Background()
	id, err := s.NewUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	data := filepath.Join(root, "uploads", id, "data")
	_ = os.Chtimes(data, old, old)
	f, _, err := s.openUpload(ctx, "app", id) // holds the writer's lock, as a PATCH in progress does
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeUploads(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("purge with the upload locked: %d, %v", n, err)
	}
	f.Close()
	if n, err := s.PurgeUploads(ctx, time.Hour); err != nil || n != 1 {
		t.Errorf("purge of the idle upload: %d, %v", n, err)
	}
	if _, err := s.UploadStatus(ctx, "app", id); !errors.Is(err, ErrUploadUnknown) {
		t.Errorf("purged upload: %v", err)
	}
}

// The states a crash in PutManifest or DeleteManifest can leave: content without its link (not
// served, collected), a referrer entry whose manifest link is gone (not listed, collected).
func TestCrashLeftovers(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	ctx := context.Background()
	subj := putImage(t, s, "app", "v1", nil, []byte("{}"), random(t, 100))
	sd := &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subj, Size: 1}
	ref := putImage(t, s, "app", "", sd, []byte(`{"a":1}`), random(t, 10))
	// a crash after the content was written, before its link: the content alone
	orphan := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"` + digest.FromString("{}").String() + `","size":2},"layers":[]}`)
	od := digest.FromBytes(orphan)
	if err := s.writeContentAtomic(s.blobPath(od), orphan); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetManifest(ctx, "app", reference.Reference{Digest: od}); !errors.Is(err, ErrManifestUnknown) {
		t.Errorf("manifest content without a link: %v", err)
	}
	// a delete that crashed after removing the link, before the referrer entry
	if err := os.Remove(s.manifestLinkPath("app", ref)); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, root) // as after a restart, with nothing cached
	refs, err := s2.Referrers(ctx, "app", subj)
	if err != nil || len(refs) != 0 {
		t.Errorf("referrers with a dangling entry: %v, %v", refs, err)
	}
	old := time.Now().Add(-2 * time.Hour)
	_ = os.Chtimes(s.blobPath(od), old, old)
	rep, err := s2.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ReferrersDeleted != 1 || rep.BlobsDeleted != 1 || rep.Manifests != 1 {
		t.Errorf("gc report %+v, want the dangling referrer and the orphan content", rep)
	}
	if _, err := os.Stat(s.blobPath(od)); !errors.Is(err, os.ErrNotExist) {
		t.Error("orphan manifest content kept")
	}
	if m, err := s2.GetManifest(ctx, "app", reference.Reference{Tag: "v1"}); err != nil || m.Digest != subj {
		t.Errorf("the tagged manifest after gc: %v", err)
	}
}

// Another collection on the same root is refused rather than run twice.
func TestGCExclusive(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	run, err := os.Open(filepath.Join(root, "gc.run"))
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	if err := flock(run, lockEX|lockNB); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(context.Background(), GCOptions{}); !errors.Is(err, ErrGCRunning) {
		t.Errorf("GC beside another: %v", err)
	}
}
