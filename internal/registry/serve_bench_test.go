package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/storage"
)

// The handler's own cost per request on the hot read paths, without the network: what
// hack/registrybench measures end to end, here with allocations counted. Run with
// go test -run '^$' -bench . -benchmem ./internal/registry/

// benchWriter is a ResponseWriter that keeps nothing, like a connection's, reused across requests.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// benchRegistry is a server holding one image (a manifest tagged "v1" and one layer) in "bench/app".
func benchRegistry(b *testing.B, accessLog bool) (s *Server, mdig, ldig digest.Digest) {
	b.Helper()
	off := false
	s, err := New(context.Background(), Config{Root: filepath.Join(b.TempDir(), "root"), Log: LogConfig{AccessLog: &off}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if accessLog {
		// the access log of New, written to nowhere instead of stderr
		s.alog = newBufferedLog(io.Discard)
		s.access = slog.New(slog.NewJSONHandler(s.alog, nil))
		s.accessJSON = true
	}
	ctx := context.Background()
	put := func(data []byte) ocispec.Descriptor {
		d := digest.FromBytes(data)
		if _, err := s.store.PutBlob(ctx, "bench/app", d, int64(len(data)), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(data))}
	}
	cfg := put([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	layer := put(bytes.Repeat([]byte("layer"), 1000))
	layer.MediaType = ocispec.MediaTypeImageLayer
	data, _ := json.Marshal(ocispec.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
	parsed, err := manifest.Parse(ocispec.MediaTypeImageManifest, data)
	if err != nil {
		b.Fatal(err)
	}
	mdig = digest.FromBytes(data)
	if err := s.store.PutManifest(ctx, "bench/app", storage.ManifestPut{Digest: mdig, MediaType: ocispec.MediaTypeImageManifest,
		Data: data, Parsed: parsed, Tags: []string{"v1"}}); err != nil {
		b.Fatal(err)
	}
	// the store caches tags and links whose change time is a second old (storage/cache.go), as
	// those of an image pushed before the requests come are
	time.Sleep(1100 * time.Millisecond)
	return s, mdig, layer.Digest
}

func benchServe(b *testing.B, s *Server, method, path string, hdr http.Header, want int) {
	req := httptest.NewRequest(method, path, nil)
	req.Header = hdr
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		s.ServeHTTP(w, req)
		if w.status != 0 && w.status != want {
			b.Fatalf("%s %s: status %d, want %d", method, path, w.status, want)
		}
	}
}

func BenchmarkManifestGetByTag(b *testing.B) {
	s, _, _ := benchRegistry(b, false)
	benchServe(b, s, http.MethodGet, "/v2/bench/app/manifests/v1", http.Header{"Accept": {ocispec.MediaTypeImageManifest}}, http.StatusOK)
}

func BenchmarkManifestGetByTagAccessLog(b *testing.B) {
	s, _, _ := benchRegistry(b, true)
	benchServe(b, s, http.MethodGet, "/v2/bench/app/manifests/v1", http.Header{"Accept": {ocispec.MediaTypeImageManifest}}, http.StatusOK)
}

func BenchmarkManifestHeadByDigest(b *testing.B) {
	s, m, _ := benchRegistry(b, false)
	benchServe(b, s, http.MethodHead, "/v2/bench/app/manifests/"+string(m), nil, http.StatusOK)
}

func BenchmarkBlobHead(b *testing.B) {
	s, _, l := benchRegistry(b, false)
	benchServe(b, s, http.MethodHead, "/v2/bench/app/blobs/"+string(l), nil, http.StatusOK)
}

func BenchmarkBlobHeadAccessLog(b *testing.B) {
	s, _, l := benchRegistry(b, true)
	benchServe(b, s, http.MethodHead, "/v2/bench/app/blobs/"+string(l), nil, http.StatusOK)
}
