package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/storage"
)

// Many clients push the same blob at once, monolithically and in chunks, into one repository and
// into several: every push succeeds, one copy is stored, nothing is left behind.
func TestConcurrentSameBlob(t *testing.T) {
	h := newHarness(t, nil)
	blob := randBytes(t, 3<<20+17)
	d := digest.FromBytes(blob)
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := "same"
			if i%3 == 0 {
				repo = fmt.Sprintf("other%d", i)
			}
			if !pushQuiet(h.c, h.url, repo, image{config: blob}, i%2 == 0) {
				t.Errorf("push %d of the same blob failed", i)
			}
		}()
	}
	wg.Wait()
	r := h.do("GET", "/v2/same/blobs/"+d.String(), nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, blob) {
		t.Fatalf("the blob pushed concurrently: %d, %d bytes", r.status, len(r.body))
	}
	if n := fsckBlobs(t, h.root); n != 1 {
		t.Errorf("%d blobs stored, want 1", n)
	}
	if ents := mustReadDir(t, filepath.Join(h.root, "uploads")); len(ents) != 0 {
		t.Errorf("%d uploads left", len(ents))
	}
	if ents := mustReadDir(t, h.srv.Store().Root()+"/tmp"); len(ents) != 1 {
		t.Errorf("tmp/ holds %d entries, want the server's own directory", len(ents))
	} else if files := mustReadDir(t, filepath.Join(h.root, "tmp", ents[0].Name())); len(files) != 0 {
		t.Errorf("temporary files left: %d", len(files))
	}
}

// Concurrent manifest pushes: the same manifest under many tags, different manifests under one
// tag, index manifests over them, while readers read the tag.
func TestConcurrentManifests(t *testing.T) {
	h := newHarness(t, nil)
	cfg := []byte(`{"os":"linux"}`)
	layer := randBytes(t, 1000)
	h.pushBlob("app", cfg)
	h.pushBlob("app", layer)
	var imgs []image
	for i := range 8 {
		imgs = append(imgs, makeImage(t, cfg, [][]byte{layer}, func(m *ocispec.Manifest) {
			m.Annotations = map[string]string{"i": fmt.Sprint(i)}
		}))
	}
	ct := []string{"Content-Type", ocispec.MediaTypeImageManifest}
	var wg sync.WaitGroup
	var reads atomic.Int64
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := imgs[i%len(imgs)]
			var r response
			if i%2 == 0 {
				r = doReq(t, h.c, "PUT", h.url+"/v2/app/manifests/shared", img.manifest, ct...) // one tag, many manifests
			} else {
				r = doReq(t, h.c, "PUT", h.url+fmt.Sprintf("/v2/app/manifests/t%d", i), imgs[0].manifest, ct...) // one manifest, many tags
			}
			if r.status != http.StatusCreated {
				t.Errorf("concurrent manifest put %d: %d %s", i, r.status, r.body)
			}
			g := doReq(t, h.c, "GET", h.url+"/v2/app/manifests/shared", nil)
			switch g.status {
			case http.StatusOK:
				if digest.FromBytes(g.body).String() != g.h.Get("Docker-Content-Digest") {
					t.Errorf("the tag read while written: body and digest disagree")
				}
				reads.Add(1)
			case http.StatusNotFound: // not written yet
			default:
				t.Errorf("reading the tag while written: %d", g.status)
			}
		}()
	}
	wg.Wait()
	r := h.do("GET", "/v2/app/manifests/shared", nil)
	wantStatus(t, "the tag after the race", r, http.StatusOK)
	if !slices.ContainsFunc(imgs, func(i image) bool { return bytes.Equal(i.manifest, r.body) }) {
		t.Error("the tag points at none of the manifests pushed")
	}
	var tl struct{ Tags []string }
	_ = json.Unmarshal(h.do("GET", "/v2/app/tags/list", nil).body, &tl)
	if len(tl.Tags) != 17 {
		t.Errorf("%d tags, want 17", len(tl.Tags))
	}
	for i := 1; i < 32; i += 2 {
		if r := h.do("GET", fmt.Sprintf("/v2/app/manifests/t%d", i), nil); !bytes.Equal(r.body, imgs[0].manifest) {
			t.Errorf("tag t%d", i)
		}
	}
	if checkServed(t, h.c, h.url) != 17 {
		t.Error("not every tag is served whole")
	}
	fsckBlobs(t, h.root)
}

// Garbage collection with no grace period, in a loop, while clients push and pull: no blob a
// stored manifest refers to is ever lost. A push whose blobs a collection took before its
// manifest arrived is refused cleanly (MANIFEST_BLOB_UNKNOWN) and succeeds when retried.
func TestGCWhileServing(t *testing.T) {
	h := newHarness(t, nil)
	st := h.srv.Store()
	rounds := 12
	if testing.Short() {
		rounds = 5
	}
	type pushed struct {
		repo, tag string
		img       image
	}
	var (
		mu      sync.Mutex
		all     []pushed
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		kick    = make(chan struct{}, 1)
		gcDone  = make(chan struct{})
		deleted atomic.Int64
		runs    atomic.Int64
		retries atomic.Int64
	)
	go func() {
		defer close(gcDone)
		for {
			// paced by the pushes (each kicks a collection that then runs beside the push's
			// manifest put), so that collections overlap pushes without starving them
			select {
			case <-stop:
				return
			case <-kick:
			}
			rep, err := st.GC(t.Context(), storage.GCOptions{Grace: 0, UploadTTL: 0})
			if err != nil {
				t.Errorf("gc while serving: %v", err)
				return
			}
			runs.Add(1)
			deleted.Add(int64(rep.BlobsDeleted))
		}
	}()
	base := randBytes(t, 128<<10) // a layer every image shares
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("gc/w%d", w)
			for i := range rounds {
				img := makeImage(t, []byte(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)), [][]byte{base, randBytes(t, 32<<10)}, nil)
				tag := fmt.Sprintf("v%d", i)
				for try := 0; ; try++ {
					// garbage for the collector: a blob nothing will refer to
					if !pushQuiet(h.c, h.url, repo, image{config: randBytes(t, 4<<10)}, true) ||
						!pushQuiet(h.c, h.url, repo, img, i%2 == 0) {
						t.Errorf("blob push failed")
						return
					}
					select {
					case kick <- struct{}{}:
					default:
					}
					r := doReq(t, h.c, "PUT", h.url+"/v2/"+repo+"/manifests/"+tag, img.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
					if r.status == http.StatusCreated {
						break
					}
					wantError(t, "manifest put during gc", r, http.StatusBadRequest, codeManifestBlobUnknown)
					retries.Add(1)
					if try > 50 {
						t.Errorf("manifest put never got through the collections")
						return
					}
				}
				mu.Lock()
				all = append(all, pushed{repo, tag, img})
				// pull something pushed earlier (by any worker) and check it whole
				old := all[len(all)/2]
				mu.Unlock()
				pullCheck(t, h, old.repo, old.tag, old.img)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-gcDone
	if _, err := st.GC(t.Context(), storage.GCOptions{Grace: 0}); err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		pullCheck(t, h, p.repo, p.tag, p.img)
	}
	if n := checkServed(t, h.c, h.url); n != len(all) {
		t.Errorf("%d manifests served, %d pushed", n, len(all))
	}
	fsckBlobs(t, h.root)
	if deleted.Load() == 0 {
		t.Error("the collections running beside the pushes deleted nothing: they did not overlap with any garbage")
	}
	t.Logf("%d pushes, %d collections deleting %d blobs, %d manifest puts refused and retried", len(all), runs.Load(), deleted.Load(), retries.Load())
}

func pullCheck(t *testing.T, h *harness, repo, tag string, img image) {
	t.Helper()
	r := doReq(t, h.c, "GET", h.url+"/v2/"+repo+"/manifests/"+tag, nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, img.manifest) {
		t.Errorf("pull %s:%s: %d", repo, tag, r.status)
		return
	}
	for _, b := range append([][]byte{img.config}, img.layers...) {
		r := doReq(t, h.c, "GET", h.url+"/v2/"+repo+"/blobs/"+digest.FromBytes(b).String(), nil)
		if r.status != http.StatusOK || !bytes.Equal(r.body, b) {
			t.Errorf("pull %s:%s: blob %s answers %d with %d bytes", repo, tag, digest.FromBytes(b), r.status, len(r.body))
		}
	}
}

// A dry run reports what a collection would delete and deletes nothing.
func TestGCDryRun(t *testing.T) {
	h := newHarness(t, nil)
	img := randomImage(t, 2, 1000)
	h.pushImage("app", "v1", img)
	orphan := h.pushBlob("app", randBytes(t, 500))
	gone := randomImage(t, 1, 300)
	h.pushImage("app", gone.digest.String(), gone)
	wantStatus(t, "delete manifest", h.do("DELETE", "/v2/app/manifests/"+gone.digest.String(), nil), http.StatusAccepted)
	loc := h.startUpload("app")
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(h.root, "uploads", filepath.Base(loc), "data"), old, old); err != nil {
		t.Fatal(err)
	}
	before := tree(t, h.root)
	st := h.srv.Store()
	rep, err := st.GC(t.Context(), storage.GCOptions{DryRun: true, Grace: 0, UploadTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// the orphan, and the deleted manifest with its config and layer
	if rep.BlobsDeleted != 4 || rep.UploadsDeleted != 1 || rep.Manifests != 1 {
		t.Errorf("dry run report %+v, want 4 blobs and 1 upload", rep)
	}
	sameTree(t, "dry run", before, tree(t, h.root))
	rep, err = st.GC(t.Context(), storage.GCOptions{Grace: 0, UploadTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsDeleted != 4 || rep.UploadsDeleted != 1 {
		t.Errorf("gc report %+v", rep)
	}
	wantError(t, "orphan after gc", h.do("HEAD", "/v2/app/blobs/"+orphan.String(), nil), http.StatusNotFound, codeBlobUnknown)
	wantError(t, "upload after gc", h.do("GET", loc, nil), http.StatusNotFound, codeBlobUploadUnknown)
	pullCheck(t, h, "app", "v1", img)
	// with the default grace, fresh garbage is kept
	h.pushBlob("app", randBytes(t, 10))
	rep, err = st.GC(t.Context(), storage.GCOptions{Grace: DefaultGCGrace})
	if err != nil || rep.BlobsDeleted != 0 || rep.BlobsKeptGrace != 1 {
		t.Errorf("gc within the grace period: %+v %v", rep, err)
	}
}
