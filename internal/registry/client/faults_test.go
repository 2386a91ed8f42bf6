package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// failing answers the first n requests that match with status (and Retry-After, if set), and
// passes the rest through.
func failing(n int32, match func(*http.Request) bool, status int, retryAfter string, hits *atomic.Int32) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) && hits.Add(1) <= n {
				if retryAfter != "" {
					w.Header().Set("Retry-After", retryAfter)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"injected by the test"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func isManifestGET(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	src := newMemStore()
	ti := buildImage(t, src, 6, linuxAMD64, 1000)

	t.Run("503 then success", func(t *testing.T) {
		var hits atomic.Int32
		reg := startRegistry(t, registry.Config{}, failing(2, isManifestGET, http.StatusServiceUnavailable, "", &hits))
		c := newClient(t, Config{})
		if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "r:v1"), PushOptions{}); err != nil {
			t.Fatal(err)
		}
		dst := newMemStore()
		if _, err := c.Pull(ctx, reg.ref(t, "r:v1"), dst, PullOptions{}); err != nil {
			t.Fatalf("Pull through two 503s: %v", err)
		}
		checkPulled(t, src, dst, ti)
		if n := reg.log.count("GET", "/manifests/"); n != 3 {
			t.Errorf("%d manifest GETs, want 3 (two 503s, then the manifest)", n)
		}
	})

	t.Run("429 with Retry-After", func(t *testing.T) {
		var hits atomic.Int32
		isBlobHEAD := func(r *http.Request) bool {
			return r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/")
		}
		reg := startRegistry(t, registry.Config{}, failing(1, isBlobHEAD, http.StatusTooManyRequests, "1", &hits))
		c := newClient(t, Config{Concurrency: 1})
		if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "r:v1"), PushOptions{}); err != nil {
			t.Fatalf("Push through a 429: %v", err)
		}
		if n := reg.log.count("HEAD", "/blobs/"); n != len(ti.blobs())+1 {
			t.Errorf("%d blob HEADs, want %d (one answered 429)", n, len(ti.blobs())+1)
		}
	})

	t.Run("Retry-After beyond the policy ends the retries", func(t *testing.T) {
		var hits atomic.Int32
		reg := startRegistry(t, registry.Config{}, failing(100, isManifestGET, http.StatusTooManyRequests, "3600", &hits))
		c := newClient(t, Config{})
		_, _, err := c.FetchManifest(ctx, reg.ref(t, "r:v1"))
		var re *ResponseError
		if !errors.Is(err, errdefs.ErrUnavailable) || !errors.As(err, &re) || re.Status != http.StatusTooManyRequests || !re.HasCode("TOOMANYREQUESTS") {
			t.Fatalf("FetchManifest = %v, want the 429", err)
		}
		if hits.Load() != 1 {
			t.Errorf("%d requests, want 1: an hour's Retry-After is not waited for", hits.Load())
		}
	})

	t.Run("persistent 503 gives up", func(t *testing.T) {
		var hits atomic.Int32
		reg := startRegistry(t, registry.Config{}, failing(100, isManifestGET, http.StatusServiceUnavailable, "", &hits))
		c := newClient(t, Config{Retry: RetryPolicy{Attempts: 4, MinDelay: 1, MaxDelay: 1}})
		_, _, err := c.FetchManifest(ctx, reg.ref(t, "r:v1"))
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "r:v1") {
			t.Fatalf("FetchManifest = %v, want unavailable naming the reference", err)
		}
		if hits.Load() != 4 {
			t.Errorf("%d attempts, want 4", hits.Load())
		}
	})

	t.Run("spec 4xx is final", func(t *testing.T) {
		var hits atomic.Int32
		reg := startRegistry(t, registry.Config{}, failing(100, isManifestGET, http.StatusBadRequest, "", &hits))
		c := newClient(t, Config{})
		if _, _, err := c.FetchManifest(ctx, reg.ref(t, "r:v1")); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("FetchManifest = %v, want invalid argument", err)
		}
		if hits.Load() != 1 {
			t.Errorf("%d attempts for a 400, want 1", hits.Load())
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		c := newClient(t, Config{Retry: RetryPolicy{Attempts: 3, MinDelay: 1, MaxDelay: 1}})
		ref, _ := c.ParseReference(addr + "/r:v1")
		if _, err := c.Resolve(ctx, ref); !errors.Is(err, errdefs.ErrUnavailable) {
			t.Fatalf("Resolve = %v, want unavailable", err)
		}
	})
}

func TestChunkedUploadResume(t *testing.T) {
	ctx := context.Background()
	for _, seek := range []bool{true, false} {
		name := "seekable source"
		if !seek {
			name = "stream source"
		}
		t.Run(name, func(t *testing.T) {
			reg := startRegistry(t, registry.Config{}, nil)
			c := newClient(t, Config{ChunkSize: 64 << 10})
			src := newMemStore()
			src.noSeek = !seek
			ti := buildImage(t, src, 8, linuxAMD64, 512<<10)
			blob := ti.layers[0]
			repo := reg.ref(t, "up")
			// cut the connection about 200 KiB into the upload: inside the fourth chunk
			reg.cut.arm(200<<10, -1)
			st, err := c.PushBlob(ctx, repo, blob, src, PushBlobOptions{})
			if err != nil {
				t.Fatalf("PushBlob across a cut connection: %v", err)
			}
			if st != StateDone || reg.cut.cuts.Load() != 1 {
				t.Fatalf("state %v, %d cuts; want done after 1 cut", st, reg.cut.cuts.Load())
			}
			if n := reg.log.count("GET", "/blobs/uploads/"); n != 1 {
				t.Errorf("%d upload status requests, want 1", n)
			}
			// 8 chunks of 64 KiB plus the one that broke
			if n := reg.log.count("PATCH", "/blobs/uploads/"); n != 8 && n != 9 {
				t.Errorf("%d PATCHes reached the handler, want 8, or 9 with the cut one", n)
			}
			got := fetchAll(t, c, repo, blob)
			if !bytes.Equal(got, src.bytes(blob.Digest)) {
				t.Fatal("the uploaded blob differs")
			}
		})
	}

	t.Run("monolithic PUT", func(t *testing.T) {
		reg := startRegistry(t, registry.Config{}, nil)
		c := newClient(t, Config{})
		src := newMemStore()
		ti := buildImage(t, src, 9, linuxAMD64, 100<<10)
		blob := ti.layers[0]
		repo := reg.ref(t, "mono")
		reg.cut.arm(50<<10, -1)
		if _, err := c.PushBlob(ctx, repo, blob, src, PushBlobOptions{}); err != nil {
			t.Fatalf("PushBlob across a cut connection: %v", err)
		}
		if reg.cut.cuts.Load() != 1 {
			t.Fatalf("%d cuts, want 1", reg.cut.cuts.Load())
		}
		if !bytes.Equal(fetchAll(t, c, repo, blob), src.bytes(blob.Digest)) {
			t.Fatal("the uploaded blob differs")
		}
	})
}

func TestDownloadResume(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, registry.Config{}, nil)
	c := newClient(t, Config{})
	src := newMemStore()
	ti := buildImage(t, src, 11, linuxAMD64, 1<<20)
	ref := reg.ref(t, "down:v1")
	if _, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	reg.log.reset()
	reg.cut.arm(-1, 300<<10) // the server's writes break 300 KiB into the layer's GET
	dst := newMemStore()
	var pl progressLog
	if _, err := c.Pull(ctx, reg.ref(t, "down@"+string(ti.manifest.Digest)), dst, PullOptions{Concurrency: 1, Progress: pl.fn}); err != nil {
		t.Fatalf("Pull across a cut connection: %v", err)
	}
	if reg.cut.cuts.Load() != 1 {
		t.Fatalf("%d cuts, want 1", reg.cut.cuts.Load())
	}
	checkPulled(t, src, dst, ti)
	reg.log.mu.Lock()
	ranges := reg.log.ranges
	reg.log.mu.Unlock()
	if len(ranges) != 1 || !strings.HasPrefix(ranges[0], "bytes=") || ranges[0] == "bytes=0-" {
		t.Errorf("Range requests %q, want one resuming past 0", ranges)
	}
	if p := pl.final(ti.layers[0]); p.State != StateDone || p.Done != ti.layers[0].Size {
		t.Errorf("progress ended at %v %d", p.State, p.Done)
	}
}

// corrupting flips a byte in the middle of every blob GET's body.
func corrupting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha") {
			h.ServeHTTP(&flipWriter{ResponseWriter: w}, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type flipWriter struct {
	http.ResponseWriter
	n int
}

func (f *flipWriter) Write(p []byte) (int, error) {
	q := append([]byte(nil), p...)
	for i := range q {
		if f.n+i == 100 {
			q[i] ^= 0xff
		}
	}
	f.n += len(q)
	return f.ResponseWriter.Write(q)
}

func TestDigestMismatch(t *testing.T) {
	ctx := context.Background()
	src := newMemStore()
	ti := buildImage(t, src, 12, linuxAMD64, 10<<10)
	reg := startRegistry(t, registry.Config{}, corrupting)
	c := newClient(t, Config{})
	ref := reg.ref(t, "bad:v1")
	if _, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := newMemStore()
	_, err := c.Pull(ctx, ref, dst, PullOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Pull of corrupted blobs = %v, want a digest mismatch", err)
	}
	if !strings.Contains(err.Error(), string(ti.layers[0].Digest)) && !strings.Contains(err.Error(), string(ti.config.Digest)) {
		t.Errorf("the error does not name the blob: %v", err)
	}
	t.Logf("error: %v", err)
	if dst.bytes(ti.layers[0].Digest) != nil || dst.bytes(ti.manifest.Digest) != nil {
		t.Error("corrupted content or its manifest reached the sink")
	}
	// the client's own reader catches it even for a consumer that does not verify
	rc, err := c.FetchBlob(ctx, reg.ref(t, "bad"), ti.layers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("reading a corrupted blob: %v, want a digest mismatch", err)
	}
}

func TestCrossRepoMount(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, registry.Config{}, nil)
	c := newClient(t, Config{})
	src := newMemStore()
	ti := buildImage(t, src, 13, linuxAMD64, 200<<10, 100<<10)
	if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "origin/app:v1"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	reg.log.reset()
	var pp progressLog
	if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "fork/app:v1"), PushOptions{MountFrom: []string{"elsewhere", "origin/app"}, Progress: pp.fn}); err != nil {
		t.Fatalf("Push with mounts: %v", err)
	}
	for _, d := range ti.blobs() {
		if p := pp.final(d); p.State != StateMounted {
			t.Errorf("%s: %v, want mounted", d.Digest, p.State)
		}
	}
	// the only bytes sent are the manifest's: every blob was mounted
	if n := reg.log.bodyBytes.Load(); n != ti.manifest.Size {
		t.Errorf("%d bytes sent, want %d (the manifest only)", n, ti.manifest.Size)
	}
	if n := reg.log.count("POST", "mount="); n != 2*len(ti.blobs()) {
		t.Errorf("%d mount requests, want 2 per blob (elsewhere, then origin/app)", n)
	}
	if n := reg.log.count("DELETE", "/blobs/uploads/"); n != len(ti.blobs()) {
		t.Errorf("%d sessions cancelled, want one per blob (opened by the failed mount from elsewhere)", n)
	}

	// a mount source without the blob: the session the registry opens instead is used
	other := newMemStore()
	ti2 := buildImage(t, other, 14, linuxAMD64, 5000)
	reg.log.reset()
	if _, err := c.Push(ctx, other, ti2.manifest, reg.ref(t, "fork/app:v2"), PushOptions{MountFrom: []string{"origin/app"}}); err != nil {
		t.Fatal(err)
	}
	if posts, mounts := reg.log.count("POST", "/blobs/uploads/"), reg.log.count("POST", "mount="); posts != mounts {
		t.Errorf("%d POSTs for %d mount attempts: the fallback session was not reused", posts, mounts)
	}
	if n := reg.log.count("DELETE", "/blobs/uploads/"); n != 0 {
		t.Errorf("%d sessions cancelled with a single mount source", n)
	}
	dst := newMemStore()
	if _, err := c.Pull(ctx, reg.ref(t, "fork/app:v2"), dst, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, other, dst, ti2)
}

// A registry that ignores Range answers 200 with the whole blob: the resumption skips what it has.
func TestDownloadResumeWithoutRange(t *testing.T) {
	ctx := context.Background()
	stripRange := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Range")
			h.ServeHTTP(w, r)
		})
	}
	reg := startRegistry(t, registry.Config{}, stripRange)
	c := newClient(t, Config{})
	src := newMemStore()
	ti := buildImage(t, src, 17, linuxAMD64, 600<<10)
	repo := reg.ref(t, "norange")
	if _, err := c.PushBlob(ctx, repo, ti.layers[0], src, PushBlobOptions{}); err != nil {
		t.Fatal(err)
	}
	reg.log.reset()
	reg.cut.arm(-1, 200<<10)
	if got := fetchAll(t, c, repo, ti.layers[0]); !bytes.Equal(got, src.bytes(ti.layers[0].Digest)) {
		t.Fatal("the blob differs")
	}
	if reg.cut.cuts.Load() != 1 || reg.log.count("GET", "/blobs/") != 2 {
		t.Errorf("%d cuts, %d GETs; want 1 and 2", reg.cut.cuts.Load(), reg.log.count("GET", "/blobs/"))
	}
}

// Without the referrers API (404), the referrers tag schema is read instead.
func TestReferrersTagFallback(t *testing.T) {
	ctx := context.Background()
	var hits atomic.Int32
	noAPI := func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/referrers/") }
	reg := startRegistry(t, registry.Config{}, failing(100, noAPI, http.StatusNotFound, "", &hits))
	c := newClient(t, Config{})
	src := newMemStore()
	ti := buildImage(t, src, 18, linuxAMD64, 100)
	repo := reg.ref(t, "fallback")
	if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "fallback:v1"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if refs, err := c.Referrers(ctx, repo, ti.manifest.Digest, ""); err != nil || len(refs) != 0 {
		t.Fatalf("Referrers with no tag = %+v, %v; want none", refs, err)
	}
	// two artifacts about the image, pushed by digest, and the index the tag schema keeps of them
	empty := src.put(ocispec.MediaTypeEmptyJSON, []byte("{}"))
	subj := ti.manifest
	subj.Platform = nil
	var arts []ocispec.Descriptor
	for _, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		b, _ := json.Marshal(ocispec.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			ArtifactType: at, Config: empty, Layers: []ocispec.Descriptor{empty}, Subject: &subj})
		d := src.put(ocispec.MediaTypeImageManifest, b)
		d.ArtifactType = at
		if _, err := c.Push(ctx, src, d, reg.ref(t, "fallback@"+string(d.Digest)), PushOptions{}); err != nil {
			t.Fatal(err)
		}
		arts = append(arts, d)
	}
	sig := arts[1]
	idx, _ := json.Marshal(ocispec.Index{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: arts})
	tag := reg.ref(t, "fallback:sha256-"+ti.manifest.Digest.Encoded())
	if _, err := c.PushManifest(ctx, tag, ocispec.MediaTypeImageIndex, idx); err != nil {
		t.Fatalf("PushManifest of the referrers index: %v", err)
	}
	refs, err := c.Referrers(ctx, repo, ti.manifest.Digest, "application/vnd.example.sig")
	if err != nil || len(refs) != 1 || refs[0].Digest != sig.Digest {
		t.Fatalf("Referrers through the tag schema = %+v, %v", refs, err)
	}
	if hits.Load() != 2 {
		t.Errorf("%d referrers API requests, want 2", hits.Load())
	}
}

// headerRewriter lets fn change the response headers of the requests it matches.
type headerRewriter struct {
	http.ResponseWriter
	fn   func(http.Header)
	done bool
}

func (h *headerRewriter) WriteHeader(code int) {
	if !h.done {
		h.done = true
		h.fn(h.Header())
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerRewriter) Write(b []byte) (int, error) {
	if !h.done {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.Write(b)
}

func TestRegistryHeadersChecked(t *testing.T) {
	ctx := context.Background()
	wrong := "sha256:" + strings.Repeat("0", 64)
	rewrite := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var hr *headerRewriter
			switch {
			case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/lying"):
				hr = &headerRewriter{ResponseWriter: w, fn: func(h http.Header) { h.Set("Docker-Content-Digest", wrong) }}
			case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/"):
				hr = &headerRewriter{ResponseWriter: w, fn: func(h http.Header) { h.Del("Docker-Content-Digest") }}
			default:
				h.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(hr, r)
			if !hr.done { // a handler that only set headers: net/http writes them after it returns
				hr.WriteHeader(http.StatusOK)
			}
		})
	}
	reg := startRegistry(t, registry.Config{}, rewrite)
	c := newClient(t, Config{})
	src := newMemStore()
	ti := buildImage(t, src, 19, linuxAMD64, 100)
	_, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "h:lying"), PushOptions{})
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("Push to a registry that reports another digest = %v, want a mismatch naming it", err)
	}
	if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "h:v1"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	// a HEAD without the digest: Resolve falls back to a GET and computes it
	reg.log.reset()
	d, err := c.Resolve(ctx, reg.ref(t, "h:v1"))
	if err != nil || d.Digest != ti.manifest.Digest || d.Size != ti.manifest.Size {
		t.Fatalf("Resolve = %+v, %v", d, err)
	}
	if reg.log.count("HEAD", "/manifests/") != 1 || reg.log.count("GET", "/manifests/") != 1 {
		t.Errorf("Resolve sent %d HEAD and %d GET, want 1 and 1", reg.log.count("HEAD", "/manifests/"), reg.log.count("GET", "/manifests/"))
	}
}
