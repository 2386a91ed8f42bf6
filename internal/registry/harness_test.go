package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specv1 "github.com/opencontainers/distribution-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// harness is a registry served over real HTTP (httptest) on a fresh storage root.
type harness struct {
	t    *testing.T
	srv  *Server
	ts   *httptest.Server
	url  string
	root string
	c    *http.Client
}

// newHarness starts a registry; edit, if set, changes the configuration first (Root is set).
func newHarness(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	off := false
	cfg := Config{Root: filepath.Join(t.TempDir(), "root"), Log: LogConfig{AccessLog: &off}}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("registry.New: %v", err)
	}
	ts := httptest.NewServer(srv)
	h := &harness{t: t, srv: srv, ts: ts, url: ts.URL, root: cfg.Root, c: ts.Client()}
	h.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.Cleanup(func() {
		ts.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("closing the registry: %v", err)
		}
	})
	return h
}

// response is a response read in full.
type response struct {
	status int
	h      http.Header
	body   []byte
}

// do sends a request to the registry at base; body may be nil, []byte, string or an io.Reader (sent
// chunked, without a Content-Length). hdr are header name/value pairs.
func doReq(t *testing.T, c *http.Client, method, url string, body any, hdr ...string) response {
	t.Helper()
	var r io.Reader
	length := int64(-1)
	switch b := body.(type) {
	case nil:
		length = 0
	case []byte:
		r, length = bytes.NewReader(b), int64(len(b))
	case string:
		r, length = strings.NewReader(b), int64(len(b))
	case io.Reader:
		r = b
	default:
		t.Fatalf("doReq: body of type %T", body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if length >= 0 {
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, h: resp.Header, body: data}
}

func (h *harness) do(method, path string, body any, hdr ...string) response {
	h.t.Helper()
	return doReq(h.t, h.c, method, h.url+path, body, hdr...)
}

// raw sends a request line exactly as given (a target Go's client might normalise) and reads the
// response.
func rawRequest(t *testing.T, base, method, target string) response {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", method, target, addr)
	req, _ := http.NewRequest(method, base, nil)
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, h: resp.Header, body: data}
}

// wantStatus fails unless r has the status.
func wantStatus(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, clip(string(r.body)))
	}
}

// wantError checks that r is the spec's JSON error with status and code, and that its
// Content-Length is that of the error body (never the length of content it is about). For HEAD
// the body is absent; pass head=true.
func wantError(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (%s); body %s", what, r.status, status, code, clip(string(r.body)))
	}
	if ct := r.h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	for _, k := range []string{"Docker-Content-Digest", "Content-Range", "Oci-Subject", "Etag"} {
		if v := r.h.Get(k); v != "" {
			t.Errorf("%s: an error response carries %s: %s", what, k, v)
		}
	}
	if len(r.body) == 0 {
		// HEAD: no body, but the length announced must be the error document's
		if cl := r.h.Get("Content-Length"); cl == "" {
			t.Errorf("%s: no Content-Length", what)
		}
		return
	}
	if cl := r.h.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Errorf("%s: Content-Length %q for an error body of %d bytes", what, cl, len(r.body))
	}
	var er specv1.ErrorResponse
	if err := json.Unmarshal(r.body, &er); err != nil {
		t.Fatalf("%s: error body is not the spec's JSON: %v: %s", what, err, r.body)
	}
	if len(er.Errors) == 0 || er.Errors[0].Code != code {
		t.Fatalf("%s: error %s, want code %s", what, r.body, code)
	}
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pushBlob uploads data monolithically (POST ?digest=) to repo.
func (h *harness) pushBlob(repo string, data []byte) digest.Digest {
	h.t.Helper()
	d := digest.FromBytes(data)
	r := h.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, "Content-Type", "application/octet-stream")
	wantStatus(h.t, "push blob", r, http.StatusCreated)
	if got := r.h.Get("Docker-Content-Digest"); got != d.String() {
		h.t.Fatalf("push blob: Docker-Content-Digest %q, want %s", got, d)
	}
	return d
}

// startUpload opens an upload session and returns its location (a path).
func (h *harness) startUpload(repo string) string {
	h.t.Helper()
	r := h.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	wantStatus(h.t, "start upload", r, http.StatusAccepted)
	loc := r.h.Get("Location")
	if !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") {
		h.t.Fatalf("start upload: Location %q", loc)
	}
	return loc
}

// image is an image manifest and the blobs it refers to, as pushed.
type image struct {
	config   []byte
	layers   [][]byte
	manifest []byte
	digest   digest.Digest
}

// makeImage builds an OCI image manifest for a config and layers; edit, if set, changes the
// manifest before it is encoded.
func makeImage(t testing.TB, config []byte, layers [][]byte, edit func(*ocispec.Manifest)) image {
	m := ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:    []ocispec.Descriptor{},
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(l), Size: int64(len(l))})
	}
	if edit != nil {
		edit(&m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return image{config: config, layers: layers, manifest: b, digest: digest.FromBytes(b)}
}

func randomImage(t testing.TB, nlayers, size int) image {
	var layers [][]byte
	for range nlayers {
		layers = append(layers, randBytes(t, size))
	}
	return makeImage(t, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":"`+
		digest.FromBytes(randBytes(t, 8)).Encoded()+`"}`), layers, nil)
}

// pushImage uploads an image's blobs and puts its manifest at ref (a tag or its digest).
func (h *harness) pushImage(repo, ref string, img image) response {
	h.t.Helper()
	h.pushBlob(repo, img.config)
	for _, l := range img.layers {
		h.pushBlob(repo, l)
	}
	r := h.do("PUT", "/v2/"+repo+"/manifests/"+ref, img.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
	wantStatus(h.t, "put manifest "+repo+":"+ref, r, http.StatusCreated)
	return r
}

// tree lists the files and directories below root (but not the per-process temporary
// directories under tmp/) with their sizes: what a request wrote, if anything.
func tree(t testing.TB, root string) map[string]int64 {
	out := map[string]int64{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "tmp" && d.IsDir() {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel+"/"] = 0
		} else {
			out[rel] = fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// sameTree fails when the storage changed since before.
func sameTree(t *testing.T, what string, before, after map[string]int64) {
	t.Helper()
	for p, n := range after {
		if m, ok := before[p]; !ok {
			t.Errorf("%s: wrote %s", what, p)
		} else if m != n {
			t.Errorf("%s: changed %s (%d -> %d bytes)", what, p, m, n)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s: removed %s", what, p)
		}
	}
}
