package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// The local content store is what the CLI will pull into and push from.
var (
	_ Sink   = (*content.Store)(nil)
	_ Source = (*content.Store)(nil)
	_ Sink   = (*memStore)(nil)
	_ Source = (*memStore)(nil)
)

// memStore is a test-only Sink and Source in memory, verifying what it ingests as the content
// store does.
type memStore struct {
	mu      sync.Mutex
	blobs   map[digest.Digest][]byte
	noSeek  bool // Open returns readers that cannot seek (uploads then skip to resume)
	ingests atomic.Int32
}

func newMemStore() *memStore { return &memStore{blobs: map[digest.Digest][]byte{}} }

func (m *memStore) Has(_ context.Context, d ocispec.Descriptor) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d.Digest]
	return ok && int64(len(b)) == d.Size, nil
}

func (m *memStore) Ingest(_ context.Context, d ocispec.Descriptor, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != d.Size || d.Digest.Algorithm().FromBytes(b) != d.Digest {
		return fmt.Errorf("memstore: %s: content does not match: %w", d.Digest, errdefs.ErrInvalidArgument)
	}
	m.ingests.Add(1)
	m.mu.Lock()
	m.blobs[d.Digest] = b
	m.mu.Unlock()
	return nil
}

type seekCloser struct{ *bytes.Reader }

func (seekCloser) Close() error { return nil }

func (m *memStore) Open(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	m.mu.Lock()
	b, ok := m.blobs[d.Digest]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("memstore: %s: %w", d.Digest, errdefs.ErrNotFound)
	}
	if m.noSeek {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return seekCloser{bytes.NewReader(b)}, nil
}

func (m *memStore) put(mediaType string, b []byte) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	m.mu.Lock()
	m.blobs[d.Digest] = b
	m.mu.Unlock()
	return d
}

func (m *memStore) bytes(d digest.Digest) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blobs[d]
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testImage is an image put into a memStore: its manifest and the blobs it references.
type testImage struct {
	manifest ocispec.Descriptor
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
}

func (ti testImage) blobs() []ocispec.Descriptor {
	return append([]ocispec.Descriptor{ti.config}, ti.layers...)
}

// buildImage puts an image with layers of the given sizes (random content from seed) into s.
func buildImage(t *testing.T, s *memStore, seed uint64, p ocispec.Platform, sizes ...int) testImage {
	t.Helper()
	var ti testImage
	cfg := ocispec.Image{Platform: p, RootFS: ocispec.RootFS{Type: "layers"}}
	for i, n := range sizes {
		b := randomBytes(seed*100+uint64(i), n)
		ti.layers = append(ti.layers, s.put(ocispec.MediaTypeImageLayerGzip, b))
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(b))
	}
	cb, _ := json.Marshal(cfg)
	ti.config = s.put(ocispec.MediaTypeImageConfig, cb)
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ti.config, Layers: ti.layers})
	ti.manifest = s.put(ocispec.MediaTypeImageManifest, mb)
	pp := p
	ti.manifest.Platform = &pp
	return ti
}

func buildIndex(s *memStore, images ...testImage) ocispec.Descriptor {
	idx := ocispec.Index{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, ti := range images {
		idx.Manifests = append(idx.Manifests, ti.manifest)
	}
	b, _ := json.Marshal(idx)
	return s.put(ocispec.MediaTypeImageIndex, b)
}

// ---- the registry under test

// requestLog records what reached the registry.
type requestLog struct {
	mu        sync.Mutex
	lines     []string // "METHOD path?query status"
	bodyBytes atomic.Int64
	ranges    []string
}

func (l *requestLog) count(method, substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.HasPrefix(s, method+" ") && strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func (l *requestLog) reset() {
	l.mu.Lock()
	l.lines, l.ranges = nil, nil
	l.mu.Unlock()
	l.bodyBytes.Store(0)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = countingBody{r.Body, &l.bodyBytes}
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		line := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			line += "?" + r.URL.RawQuery
		}
		l.mu.Lock()
		l.lines = append(l.lines, fmt.Sprintf("%s %d", line, rec.status))
		if rg := r.Header.Get("Range"); rg != "" {
			l.ranges = append(l.ranges, rg)
		}
		l.mu.Unlock()
	})
}

// cutListener hands out connections that it cuts once, when an armed byte budget runs out:
// reads (client to server) or writes (server to client).
type cutListener struct {
	net.Listener
	mu          sync.Mutex
	readBudget  int64 // -1: disarmed
	writeBudget int64
	cuts        atomic.Int32
}

func (l *cutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, l: l}, nil
}

func (l *cutListener) arm(read, write int64) {
	l.mu.Lock()
	l.readBudget, l.writeBudget = read, write
	l.mu.Unlock()
}

// take spends n bytes of a budget: it returns how many may pass and whether to cut after them.
func (l *cutListener) take(budget *int64, n int) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *budget < 0 {
		return n, false
	}
	if int64(n) < *budget {
		*budget -= int64(n)
		return n, false
	}
	allow := int(*budget)
	*budget = -1
	return allow, true
}

type cutConn struct {
	net.Conn
	l *cutListener
}

func (c *cutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		allow, cut := c.l.take(&c.l.readBudget, n)
		if cut {
			c.l.cuts.Add(1)
			c.Conn.Close()
			return allow, io.ErrUnexpectedEOF
		}
	}
	return n, err
}

func (c *cutConn) Write(p []byte) (int, error) {
	allow, cut := c.l.take(&c.l.writeBudget, len(p))
	if cut {
		n, _ := c.Conn.Write(p[:allow])
		c.l.cuts.Add(1)
		c.Conn.Close()
		return n, net.ErrClosed
	}
	return c.Conn.Write(p)
}

type testRegistry struct {
	host string
	srv  *registry.Server
	log  *requestLog
	cut  *cutListener
}

// startRegistry runs berth's registry in-process behind httptest, its handler wrapped by the
// request log and then by wrap (failure injection), its listener by a cutListener.
func startRegistry(t testing.TB, cfg registry.Config, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	cfg.Root = filepath.Join(t.TempDir(), "registry")
	off := false
	cfg.Log.AccessLog = &off
	cfg.Metrics.Disabled = true
	srv, err := registry.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("registry.New: %v", err)
	}
	tr := &testRegistry{srv: srv, log: &requestLog{}}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewUnstartedServer(tr.log.wrap(h))
	tr.cut = &cutListener{Listener: ts.Listener, readBudget: -1, writeBudget: -1}
	ts.Listener = tr.cut
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	tr.host = strings.TrimPrefix(ts.URL, "http://")
	return tr
}

func (tr *testRegistry) ref(t *testing.T, s string) reference.Image {
	t.Helper()
	r, err := reference.ParseImage(tr.host+"/"+s, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newClient is a client with quick retries, so that failure-injection tests do not sleep long.
func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Retry.MinDelay == 0 {
		cfg.Retry = RetryPolicy{Attempts: 5, MinDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ---- auth fixtures

func writeHtpasswd(t *testing.T, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenServer is a Docker token server for tests: anonymous users get pull, the user with the
// password gets what they ask for. It counts the tokens it issues.
type tokenServer struct {
	url, service, issuer, keyFile string
	key                           *ecdsa.PrivateKey
	user, password                string
	issued                        atomic.Int32
	scopes                        sync.Map // scope string → times asked
	bySubject                     sync.Map // subject → *atomic.Int32 tokens issued to it
}

// issuedTo counts the tokens issued to subject. A client that gave up (a cancelled push) can have a
// token request still on the wire, served after its call returned: counts per subject keep it from
// being charged to another client.
func (ks *tokenServer) issuedTo(subject string) int32 {
	if v, ok := ks.bySubject.Load(subject); ok {
		return v.(*atomic.Int32).Load()
	}
	return 0
}

type testAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type testClaims struct {
	jwt.RegisteredClaims
	Access []testAccess `json:"access"`
}

func startTokenServer(t *testing.T, user, password string) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ks := &tokenServer{service: "berth-test-registry", issuer: "berth-test-issuer", key: key, user: user, password: password,
		keyFile: filepath.Join(t.TempDir(), "token.pem")}
	if err := os.WriteFile(ks.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(ks.serve))
	t.Cleanup(ts.Close)
	ks.url = ts.URL + "/token"
	return ks
}

func (ks *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scopes := q["scope"]
	u, p, hasAuth := r.BasicAuth()
	authed := hasAuth && u == ks.user && p == ks.password
	oauth := r.Method == http.MethodPost
	if oauth {
		// the OAuth2 refresh-token grant of an identity token ("refresh-" + user here)
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		q = r.PostForm
		scopes = strings.Fields(q.Get("scope"))
		hasAuth = true
		authed, u = q.Get("refresh_token") == "refresh-"+ks.user, ks.user
	}
	if q.Get("service") != ks.service {
		http.Error(w, `{"errors":[{"code":"DENIED","message":"unknown service"}]}`, http.StatusBadRequest)
		return
	}
	if hasAuth && !authed {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	var access []testAccess
	for _, s := range scopes {
		v, _ := ks.scopes.LoadOrStore(s, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
		parts := strings.Split(s, ":")
		if len(parts) != 3 {
			continue
		}
		var acts []string
		for _, a := range strings.Split(parts[2], ",") {
			if authed || a == "pull" {
				acts = append(acts, a)
			}
		}
		access = append(access, testAccess{Type: parts[0], Name: parts[1], Actions: acts})
	}
	now := time.Now()
	sub := "anonymous"
	if authed {
		sub = u
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, testClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: ks.issuer, Subject: sub, Audience: jwt.ClaimStrings{ks.service},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute))},
		Access: access,
	})
	s, err := tok.SignedString(ks.key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ks.issued.Add(1)
	n, _ := ks.bySubject.LoadOrStore(sub, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	w.Header().Set("Content-Type", "application/json")
	key := "token"
	if oauth {
		key = "access_token"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{key: s, "expires_in": 300, "issued_at": now.Format(time.RFC3339)})
}

func (ks *tokenServer) config() *registry.TokenConfig {
	return &registry.TokenConfig{Realm: ks.url, Service: ks.service, Issuer: ks.issuer, PublicKeys: ks.keyFile}
}
