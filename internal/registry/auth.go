package registry

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// access is one thing a request needs: actions on a resource, in the Docker token scope grammar
// ("repository:library/busybox:pull,push", "registry:catalog:*").
type access struct {
	typ, name string
	actions   []string
}

func (a access) scope() string { return a.typ + ":" + a.name + ":" + strings.Join(a.actions, ",") }

// authenticator decides whether a request may have the access it needs. It returns the user (for
// the access log) or an error to send, which carries the challenge header.
type authenticator interface {
	authorize(w http.ResponseWriter, r *http.Request, need []access) (string, *apiError)
}

type noAuth struct{}

func (noAuth) authorize(http.ResponseWriter, *http.Request, []access) (string, *apiError) {
	return "", nil
}

// ---- htpasswd

type htpasswdAuth struct {
	realm string
	users map[string][]byte // user → bcrypt hash
	// verified caches successful checks: bcrypt costs tens of milliseconds by design, and a
	// client sends its credentials with every request.
	mu       sync.Mutex
	verified map[[32]byte]time.Time
}

const credentialCacheTTL = 5 * time.Minute

func loadHtpasswd(c *HtpasswdConfig) (*htpasswdAuth, error) {
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	defer f.Close()
	a := &htpasswdAuth{realm: c.Realm, users: map[string][]byte{}, verified: map[[32]byte]time.Time{}}
	if a.realm == "" {
		a.realm = "berth registry"
	}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, ok := strings.Cut(t, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd %s:%d: not user:hash", c.Path, line)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("htpasswd %s:%d: user %s: only bcrypt hashes are accepted (htpasswd -B): %w", c.Path, line, user, err)
		}
		a.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", c.Path, err)
	}
	if len(a.users) == 0 {
		return nil, fmt.Errorf("htpasswd %s: no users", c.Path)
	}
	return a, nil
}

func (a *htpasswdAuth) authorize(w http.ResponseWriter, r *http.Request, _ []access) (string, *apiError) {
	user, pass, ok := r.BasicAuth()
	if ok {
		if hash, known := a.users[user]; known {
			key := sha256.Sum256([]byte(user + "\x00" + pass))
			now := time.Now()
			a.mu.Lock()
			exp, cached := a.verified[key]
			a.mu.Unlock()
			if cached && now.Before(exp) {
				return user, nil
			}
			if bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil {
				a.mu.Lock()
				if len(a.verified) > 4096 {
					clear(a.verified)
				}
				a.verified[key] = now.Add(credentialCacheTTL)
				a.mu.Unlock()
				return user, nil
			}
		}
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", a.realm))
	return "", newError(http.StatusUnauthorized, codeUnauthorized, "authentication required")
}

// ---- Docker bearer tokens

type tokenAuth struct {
	cfg    TokenConfig
	keys   jwt.VerificationKeySet
	parser *jwt.Parser
	mu     sync.Mutex
	cache  map[string]*tokenClaims
}

// tokenClaims are the Docker token spec's claims: the registered ones plus "access".
type tokenClaims struct {
	jwt.RegisteredClaims
	Access []tokenAccess `json:"access"`
}

type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func loadTokenAuth(c *TokenConfig) (*tokenAuth, error) {
	b, err := os.ReadFile(c.PublicKeys)
	if err != nil {
		return nil, fmt.Errorf("token auth public keys: %w", err)
	}
	var keys jwt.VerificationKeySet
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			if len(bytes.TrimSpace(rest)) > 0 && len(keys.Keys) == 0 {
				return nil, fmt.Errorf("token auth public keys %s: no PEM blocks", c.PublicKeys)
			}
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("token auth certificate in %s: %w", c.PublicKeys, err)
			}
			keys.Keys = append(keys.Keys, cert.PublicKey)
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("token auth public key in %s: %w", c.PublicKeys, err)
			}
			keys.Keys = append(keys.Keys, k)
		default:
			return nil, fmt.Errorf("token auth public keys %s: unexpected PEM block %q (want CERTIFICATE or PUBLIC KEY)", c.PublicKeys, blk.Type)
		}
	}
	if len(keys.Keys) == 0 {
		return nil, fmt.Errorf("token auth public keys %s: none found", c.PublicKeys)
	}
	return &tokenAuth{
		cfg:  *c,
		keys: keys,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}),
			jwt.WithIssuer(c.Issuer), jwt.WithAudience(c.Service), jwt.WithExpirationRequired(), jwt.WithLeeway(time.Minute)),
		cache: map[string]*tokenClaims{},
	}, nil
}

func (a *tokenAuth) claims(raw string) (*tokenClaims, error) {
	a.mu.Lock()
	c, ok := a.cache[raw]
	a.mu.Unlock()
	if ok {
		if c.ExpiresAt != nil && time.Now().Before(c.ExpiresAt.Add(time.Minute)) {
			return c, nil
		}
		a.mu.Lock()
		delete(a.cache, raw)
		a.mu.Unlock()
	}
	c = &tokenClaims{}
	if _, err := a.parser.ParseWithClaims(raw, c, func(*jwt.Token) (any, error) { return a.keys, nil }); err != nil {
		return nil, err
	}
	a.mu.Lock()
	if len(a.cache) > 4096 {
		clear(a.cache)
	}
	a.cache[raw] = c
	a.mu.Unlock()
	return c, nil
}

func (c *tokenClaims) grants(need access) bool {
	for _, act := range need.actions {
		ok := false
		for _, g := range c.Access {
			if g.Type == need.typ && g.Name == need.name && (slices.Contains(g.Actions, act) || slices.Contains(g.Actions, "*")) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (a *tokenAuth) authorize(w http.ResponseWriter, r *http.Request, need []access) (string, *apiError) {
	var errText string
	if raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		c, err := a.claims(strings.TrimSpace(raw))
		if err == nil {
			all := true
			for _, n := range need {
				if !c.grants(n) {
					all = false
					break
				}
			}
			if all {
				return c.Subject, nil
			}
			errText = "insufficient_scope"
		} else {
			errText = "invalid_token"
		}
	}
	ch := fmt.Sprintf("Bearer realm=%q,service=%q", a.cfg.Realm, a.cfg.Service)
	if len(need) > 0 {
		scopes := make([]string, len(need))
		for i, n := range need {
			scopes[i] = n.scope()
		}
		ch += fmt.Sprintf(",scope=%q", strings.Join(scopes, " "))
	}
	if errText != "" {
		ch += fmt.Sprintf(",error=%q", errText)
	}
	w.Header().Set("WWW-Authenticate", ch)
	e := newError(http.StatusUnauthorized, codeUnauthorized, "authentication required")
	if errText == "insufficient_scope" {
		e.detail = "the token does not grant " + need[0].scope()
	}
	return "", e
}

// can reports whether the request is allowed extra access, without sending a challenge (used for
// the source repository of a cross-repository mount: without it, the mount falls back to an upload).
func (s *Server) can(r *http.Request, need access) bool {
	switch a := s.auth.(type) {
	case *tokenAuth:
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return false
		}
		c, err := a.claims(strings.TrimSpace(raw))
		return err == nil && c.grants(need)
	default:
		return true // htpasswd users and anonymous users of an open registry may read everything
	}
}

func newAuthenticator(c AuthConfig) (authenticator, error) {
	switch {
	case c.Htpasswd != nil:
		return loadHtpasswd(c.Htpasswd)
	case c.Token != nil:
		return loadTokenAuth(c.Token)
	}
	return noAuth{}, nil
}
