package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
)

func staticCreds(user, pass string) CredentialFunc {
	return func(context.Context, string, string) (Credential, error) {
		return Credential{Username: user, Password: pass}, nil
	}
}

func TestBasicAuth(t *testing.T) {
	ctx := context.Background()
	pw := writeHtpasswd(t, map[string]string{"alice": "s3cret"})
	reg := startRegistry(t, registry.Config{Auth: registry.AuthConfig{Htpasswd: &registry.HtpasswdConfig{Path: pw}}}, nil)
	src := newMemStore()
	ti := buildImage(t, src, 4, linuxAMD64, 100<<10, 10)
	ref := reg.ref(t, "private/app:v1")

	anon := newClient(t, Config{})
	_, err := anon.Push(ctx, src, ti.manifest, ref, PushOptions{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous Push = %v, want unauthorized", err)
	}
	t.Logf("anonymous: %v", err)
	wrong := newClient(t, Config{Credentials: staticCreds("alice", "wrong")})
	if _, err := wrong.Resolve(ctx, ref); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v, want unauthorized", err)
	}

	c := newClient(t, Config{Credentials: staticCreds("alice", "s3cret"), ChunkSize: 32 << 10})
	reg.log.reset()
	if _, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatalf("Push with credentials: %v", err)
	}
	// One challenge, then credentials go with every request: there is one 401 only.
	if n := reg.log.count("HEAD", " 401") + reg.log.count("POST", " 401") + reg.log.count("PATCH", " 401") + reg.log.count("PUT", " 401"); n != 1 {
		t.Errorf("%d requests were challenged, want 1", n)
	}
	dst := newMemStore()
	if _, err := c.Pull(ctx, ref, dst, PullOptions{}); err != nil {
		t.Fatalf("Pull with credentials: %v", err)
	}
	checkPulled(t, src, dst, ti)
}

func TestBearerAuth(t *testing.T) {
	ctx := context.Background()
	ts := startTokenServer(t, "bob", "hunter2")
	reg := startRegistry(t, registry.Config{Auth: registry.AuthConfig{Token: ts.config()}}, nil)
	src := newMemStore()
	ti := buildImage(t, src, 5, linuxAMD64, 100<<10, 20<<10, 10)
	ref := reg.ref(t, "team/app:v1")

	// anonymous users get pull only: a push is refused
	anon := newClient(t, Config{})
	if _, err := anon.Push(ctx, src, ti.manifest, ref, PushOptions{}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous Push = %v, want unauthorized", err)
	}

	c := newClient(t, Config{Credentials: staticCreds("bob", "hunter2"), ChunkSize: 32 << 10, Concurrency: 3})
	before := ts.issuedTo("bob")
	if _, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatalf("Push with a token: %v", err)
	}
	// Tokens are cached per scope: the push needs pull (HEAD) and pull,push (uploads, manifest),
	// whatever the number of blobs and requests.
	if n := ts.issuedTo("bob") - before; n != 2 {
		t.Errorf("%d tokens issued for one push, want 2 (one per scope set: pull, and pull+push)", n)
	}
	issued := ts.issued.Load()

	dst := newMemStore()
	if _, err := anon.Pull(ctx, ref, dst, PullOptions{}); err != nil {
		t.Fatalf("anonymous Pull: %v", err)
	}
	checkPulled(t, src, dst, ti)
	dst2 := newMemStore()
	if _, err := c.Pull(ctx, ref, dst2, PullOptions{}); err != nil {
		t.Fatalf("Pull with the push client: %v", err)
	}
	if n := ts.issued.Load() - issued; n > 1 {
		t.Errorf("%d new tokens for two pulls, want at most 1 (the anonymous client's; the other's pull token is cached)", n)
	}

	// a cross-repository mount needs pull on the source repository, which the client asks for
	reg.log.reset()
	var pp progressLog
	if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "other/app:v1"), PushOptions{MountFrom: []string{"team/app"}, Progress: pp.fn}); err != nil {
		t.Fatalf("Push with mount: %v", err)
	}
	for _, d := range ti.blobs() {
		if p := pp.final(d); p.State != StateMounted {
			t.Errorf("blob %s: %v, want mounted", d.Digest, p.State)
		}
	}
	if n := reg.log.count("PATCH", ""); n != 0 || reg.log.count("POST", "mount=") != len(ti.blobs()) {
		t.Errorf("mount push: %d PATCHes, %d mount POSTs", n, reg.log.count("POST", "mount="))
	}
}

func TestIdentityAndRegistryTokens(t *testing.T) {
	ctx := context.Background()
	ts := startTokenServer(t, "carol", "pw")
	reg := startRegistry(t, registry.Config{Auth: registry.AuthConfig{Token: ts.config()}}, nil)
	src := newMemStore()
	ti := buildImage(t, src, 15, linuxAMD64, 1000)
	ref := reg.ref(t, "id/app:v1")

	idc := newClient(t, Config{Credentials: func(context.Context, string, string) (Credential, error) {
		return Credential{IdentityToken: "refresh-carol"}, nil
	}})
	if _, err := idc.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatalf("Push with an identity token: %v", err)
	}
	bad := newClient(t, Config{Credentials: func(context.Context, string, string) (Credential, error) {
		return Credential{IdentityToken: "stolen"}, nil
	}})
	if _, err := bad.Resolve(ctx, ref); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a bad identity token: %v, want unauthorized", err)
	}

	// a registry token is sent as is: one the token server issued for pull works for a pull
	var tok string
	grab := newClient(t, Config{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tok = a
		}
		return http.DefaultTransport.RoundTrip(r)
	})})
	if _, err := grab.Resolve(ctx, ref); err != nil || tok == "" {
		t.Fatalf("anonymous Resolve: %v (token %q)", err, tok)
	}
	issued := ts.issued.Load()
	rt := newClient(t, Config{Credentials: func(context.Context, string, string) (Credential, error) {
		return Credential{RegistryToken: tok}, nil
	}})
	dst := newMemStore()
	if _, err := rt.Pull(ctx, ref, dst, PullOptions{}); err != nil {
		t.Fatalf("Pull with a registry token: %v", err)
	}
	checkPulled(t, src, dst, ti)
	if ts.issued.Load() != issued {
		t.Error("the token server was asked although a registry token was configured")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestHTTPS: a host that is not loopback is spoken to over TLS, and a certificate that does not
// verify is an error at once, not retried.
func TestHTTPS(t *testing.T) {
	ctx := context.Background()
	srv, err := registry.New(ctx, registry.Config{Root: t.TempDir(), Metrics: registry.MetricsConfig{Disabled: true},
		Log: registry.LogConfig{AccessLog: new(bool)}})
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { ts.Close(); srv.Close() })
	addr := ts.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	// every connection goes to the test server, whatever the name: no traffic leaves 127.0.0.1
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	trusted := ts.Client().Transport.(*http.Transport).Clone()
	trusted.DialContext = dial
	trusted.TLSClientConfig.ServerName = "example.com" // httptest's certificate names it
	c := newClient(t, Config{Transport: trusted})
	src := newMemStore()
	ti := buildImage(t, src, 16, linuxAMD64, 20<<10)
	ref, err := c.ParseReference("example.com:" + port + "/tls/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatalf("Push over TLS: %v", err)
	}
	dst := newMemStore()
	if _, err := c.Pull(ctx, ref, dst, PullOptions{}); err != nil {
		t.Fatalf("Pull over TLS: %v", err)
	}
	checkPulled(t, src, dst, ti)

	untrusted := &http.Transport{DialContext: dial}
	u := newClient(t, Config{Transport: untrusted})
	_, err = u.Resolve(ctx, ref)
	if err == nil || errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Resolve with an unknown CA = %v, want a final TLS error", err)
	}
	t.Logf("untrusted: %v", err)

	// listed as insecure: plain HTTP, which the TLS server refuses
	plain := newClient(t, Config{Transport: &http.Transport{DialContext: dial}, Insecure: []string{"example.com"}})
	if _, err := plain.Resolve(ctx, ref); err == nil {
		t.Fatal("plain HTTP to a TLS server succeeded")
	}
}

func TestPlainHTTP(t *testing.T) {
	c := newClient(t, Config{Insecure: []string{"reg.local", "other.local:5000"}})
	for host, want := range map[string]bool{
		"localhost": true, "localhost:5000": true, "127.0.0.1:1": true, "127.1.2.3": true, "[::1]:5000": true,
		"reg.local": true, "reg.local:443": true, "other.local:5000": true, "other.local:5001": false,
		"reg.example": false, "10.0.0.1:5000": false, "[::2]:5000": false,
	} {
		if got := c.plainHTTP(host); got != want {
			t.Errorf("plainHTTP(%s) = %v, want %v", host, got, want)
		}
	}
	if _, err := New(Config{Insecure: []string{"http://x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("New with a URL as insecure host: %v", err)
	}
}
