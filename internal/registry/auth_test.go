package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

func TestBasicAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(pw, []byte("# users\nalice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Auth.Htpasswd = &HtpasswdConfig{Path: pw, Realm: "test realm"} })
	for _, c := range []struct {
		what string
		hdr  []string
	}{
		{"no credentials", nil},
		{"wrong password", []string{"Authorization", basic("alice", "wrong")}},
		{"unknown user", []string{"Authorization", basic("bob", "s3cret")}},
		{"a bearer token", []string{"Authorization", "Bearer abc"}},
	} {
		r := h.do("GET", "/v2/", nil, c.hdr...)
		wantError(t, c.what, r, http.StatusUnauthorized, codeUnauthorized)
		if got := r.h.Get("WWW-Authenticate"); got != `Basic realm="test realm"` {
			t.Errorf("%s: WWW-Authenticate %q", c.what, got)
		}
	}
	before := tree(t, h.root)
	wantError(t, "push without credentials", h.do("POST", "/v2/app/blobs/uploads/", nil), http.StatusUnauthorized, codeUnauthorized)
	sameTree(t, "unauthenticated push", before, tree(t, h.root))
	ok := basic("alice", "s3cret")
	wantStatus(t, "base with credentials", h.do("GET", "/v2/", nil, "Authorization", ok), http.StatusOK)
	for range 2 { // the second hits the verified-credentials cache
		r := h.do("POST", "/v2/app/blobs/uploads/", nil, "Authorization", ok)
		wantStatus(t, "start upload with credentials", r, http.StatusAccepted)
	}
	// the hash file is checked at start: a bad one is a configuration error
	bad := filepath.Join(dir, "bad")
	_ = os.WriteFile(bad, []byte("alice:{SHA}abc\n"), 0o600)
	if _, err := New(t.Context(), Config{Root: filepath.Join(dir, "r2"), Auth: AuthConfig{Htpasswd: &HtpasswdConfig{Path: bad}}}); err == nil {
		t.Error("an htpasswd file of SHA hashes was accepted")
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// tokenServer is a Docker token server: it grants what its policy allows of the scopes asked.
type tokenServer struct {
	key     *ecdsa.PrivateKey
	issuer  string
	service string
	// grant returns the actions granted on a repository
	grant func(repo string, asked []string) []string
	ttl   time.Duration
	srv   *httptest.Server
}

func newTokenServer(t *testing.T, grant func(string, []string) []string) (*tokenServer, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "token.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{key: key, issuer: "test-issuer", service: "berth-test", grant: grant, ttl: 5 * time.Minute}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts, pub
}

func (ts *tokenServer) token(service string, access []tokenAccess, ttl time.Duration) string {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: ts.issuer, Subject: "alice", Audience: jwt.ClaimStrings{service},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Access: access,
	})
	s, err := tok.SignedString(ts.key)
	if err != nil {
		panic(err)
	}
	return s
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var access []tokenAccess
	for _, scope := range q["scope"] {
		for _, one := range strings.Fields(scope) {
			parts := strings.Split(one, ":")
			if len(parts) != 3 {
				continue
			}
			acts := ts.grant(parts[1], strings.Split(parts[2], ","))
			if parts[0] != "repository" {
				acts = nil
			}
			if len(acts) > 0 {
				access = append(access, tokenAccess{Type: parts[0], Name: parts[1], Actions: acts})
			}
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"token": ts.token(q.Get("service"), access, ts.ttl)})
}

// challenge parses a Bearer challenge's parameters.
func challenge(t *testing.T, h string) map[string]string {
	rest, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		t.Fatalf("challenge %q is not Bearer", h)
	}
	out := map[string]string{}
	for rest != "" {
		k, v, ok := strings.Cut(rest, `="`)
		if !ok {
			t.Fatalf("challenge %q", h)
		}
		val, after, ok := strings.Cut(v, `"`)
		if !ok {
			t.Fatalf("challenge %q", h)
		}
		out[strings.TrimPrefix(k, ",")] = val
		rest = after
	}
	return out
}

// The Docker token flow as a client runs it: request, 401 with a challenge, token from the realm
// for the scope the challenge names, request again with it.
func TestBearerTokenFlow(t *testing.T) {
	ts, pub := newTokenServer(t, func(repo string, asked []string) []string {
		switch repo {
		case "team/app": // read-write
			return asked
		case "public": // read-only
			if len(asked) > 0 && asked[0] == "pull" {
				return []string{"pull"}
			}
		}
		return nil
	})
	h := newHarness(t, func(c *Config) {
		c.Auth.Token = &TokenConfig{Realm: ts.srv.URL + "/token", Service: ts.service, Issuer: ts.issuer, PublicKeys: pub}
	})
	// run a request the way a client does: follow one challenge
	run := func(method, path string, body any, hdr ...string) response {
		t.Helper()
		r := h.do(method, path, body, hdr...)
		if r.status != http.StatusUnauthorized {
			return r
		}
		ch := challenge(t, r.h.Get("WWW-Authenticate"))
		if ch["realm"] != ts.srv.URL+"/token" || ch["service"] != ts.service {
			t.Fatalf("challenge %v", ch)
		}
		u := ch["realm"] + "?service=" + ch["service"]
		if s := ch["scope"]; s != "" {
			u += "&scope=" + s
		}
		tr := doReq(t, ts.srv.Client(), "GET", u, nil)
		var tok struct{ Token string }
		if err := json.Unmarshal(tr.body, &tok); err != nil {
			t.Fatal(err)
		}
		return h.do(method, path, body, append(hdr, "Authorization", "Bearer "+tok.Token)...)
	}
	r := h.do("GET", "/v2/", nil)
	wantError(t, "anonymous /v2/", r, http.StatusUnauthorized, codeUnauthorized)
	ch := challenge(t, r.h.Get("WWW-Authenticate"))
	if _, has := ch["scope"]; has {
		t.Errorf("/v2/ challenge names a scope: %v", ch)
	}
	r = h.do("GET", "/v2/team/app/tags/list", nil)
	if s := challenge(t, r.h.Get("WWW-Authenticate"))["scope"]; s != "repository:team/app:pull" {
		t.Errorf("tags challenge scope %q", s)
	}
	wantStatus(t, "/v2/ with a token", run("GET", "/v2/", nil), http.StatusOK)

	img := randomImage(t, 1, 100)
	for _, b := range append([][]byte{img.config}, img.layers...) {
		wantStatus(t, "push blob with a token", run("POST", "/v2/team/app/blobs/uploads/?digest="+digestOf(b), b), http.StatusCreated)
	}
	wantStatus(t, "push manifest with a token", run("PUT", "/v2/team/app/manifests/v1", img.manifest, "Content-Type", "application/vnd.oci.image.manifest.v1+json"), http.StatusCreated)
	wantStatus(t, "pull with a token", run("GET", "/v2/team/app/manifests/v1", nil), http.StatusOK)

	// a pull-only grant cannot push: insufficient_scope, nothing written
	before := tree(t, h.root)
	r = run("POST", "/v2/public/blobs/uploads/", nil)
	wantError(t, "push with a pull-only token", r, http.StatusUnauthorized, codeUnauthorized)
	if ch := challenge(t, r.h.Get("WWW-Authenticate")); ch["error"] != "insufficient_scope" || ch["scope"] != "repository:public:pull,push" {
		t.Errorf("insufficient scope challenge %v", ch)
	}
	sameTree(t, "push refused by scope", before, tree(t, h.root))

	// tokens the registry must refuse
	good := []tokenAccess{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodES256, tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: ts.issuer, Audience: jwt.ClaimStrings{ts.service}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Access: good})
	forgedS, _ := forged.SignedString(other)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: ts.issuer, Audience: jwt.ClaimStrings{ts.service}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Access: good})
	noneS, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	for what, tok := range map[string]string{
		"expired":        ts.token(ts.service, good, -2*time.Hour),
		"wrong audience": ts.token("another-service", good, time.Hour),
		"wrong key":      forgedS,
		"alg none":       noneS,
		"garbage":        "not.a.jwt",
	} {
		r := h.do("GET", "/v2/team/app/manifests/v1", nil, "Authorization", "Bearer "+tok)
		wantError(t, "token "+what, r, http.StatusUnauthorized, codeUnauthorized)
		if ch := challenge(t, r.h.Get("WWW-Authenticate")); ch["error"] != "invalid_token" {
			t.Errorf("token %s: challenge %v", what, ch)
		}
	}
	// the right token for another repository
	r = h.do("GET", "/v2/public/manifests/v1", nil, "Authorization", "Bearer "+ts.token(ts.service, good, time.Hour))
	wantError(t, "token for another repository", r, http.StatusUnauthorized, codeUnauthorized)

	// cross-repository mount: a pull grant on the source is needed, otherwise an upload session
	d := digestOf(img.layers[0])
	wantStatus(t, "mount without access to the source", run("POST", "/v2/public/blobs/uploads/?mount="+d+"&from=secret", nil), http.StatusUnauthorized)
	tokRW := ts.token(ts.service, []tokenAccess{{Type: "repository", Name: "team/app2", Actions: []string{"pull", "push"}}}, time.Hour)
	r = h.do("POST", "/v2/team/app2/blobs/uploads/?mount="+d+"&from=team/app", nil, "Authorization", "Bearer "+tokRW)
	wantStatus(t, "mount without a grant on the source", r, http.StatusAccepted)
	tokBoth := ts.token(ts.service, []tokenAccess{
		{Type: "repository", Name: "team/app2", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}, time.Hour)
	r = h.do("POST", "/v2/team/app2/blobs/uploads/?mount="+d+"&from=team/app", nil, "Authorization", "Bearer "+tokBoth)
	wantStatus(t, "mount with a grant on the source", r, http.StatusCreated)
	// without from, token auth never mounts (scopes are per repository)
	r = h.do("POST", "/v2/team/app2/blobs/uploads/?mount="+digestOf(img.config), nil, "Authorization", "Bearer "+tokRW)
	wantStatus(t, "mount without from under token auth", r, http.StatusAccepted)
}

func digestOf(b []byte) string { return digest.FromBytes(b).String() }
