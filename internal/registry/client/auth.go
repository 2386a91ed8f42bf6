package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hostAuth is what the client learnt about a host's authentication: the scheme of its last
// challenge, and for bearer tokens the realm, service and the tokens fetched, per scope set.
type hostAuth struct {
	// first is held by the first request to the host until its answer is in, so that
	// concurrent first requests (a push's HEADs) do not all collect a challenge.
	first   sync.Mutex
	known   atomic.Bool
	mu      sync.Mutex
	scheme  string // "", "basic" or "bearer"
	realm   string
	service string
	tokens  map[string]*tokenEntry
}

// tokenEntry is a token being fetched (ready open) or fetched; concurrent requests for the same
// scopes wait for one fetch.
type tokenEntry struct {
	ready   chan struct{}
	token   string
	expires time.Time
	err     error
}

func (c *Client) hostAuth(host string) *hostAuth {
	c.mu.Lock()
	defer c.mu.Unlock()
	ha := c.hosts[host]
	if ha == nil {
		ha = &hostAuth{tokens: map[string]*tokenEntry{}}
		c.hosts[host] = ha
	}
	return ha
}

func (c *Client) credential(ctx context.Context, host, repo string) (Credential, error) {
	if c.cfg.Credentials == nil {
		return Credential{}, nil
	}
	cred, err := c.cfg.Credentials(ctx, host, repo)
	if err != nil {
		return Credential{}, fmt.Errorf("credentials for %s/%s: %w", host, repo, err)
	}
	return cred, nil
}

// authorize adds what the host asked for last time, so that only the first request to a host (or
// the first with new scopes, for basic auth none) costs a challenge round trip.
func (c *Client) authorize(ctx context.Context, hreq *http.Request, r *req) error {
	ha := c.hostAuth(r.host)
	ha.mu.Lock()
	scheme := ha.scheme
	ha.mu.Unlock()
	switch scheme {
	case "basic":
		cred, err := c.credential(ctx, r.host, r.repo)
		if err != nil {
			return err
		}
		if cred.Username != "" || cred.Password != "" {
			hreq.SetBasicAuth(cred.Username, cred.Password)
		}
	case "bearer":
		tok, err := c.token(ctx, ha, r, nil, "")
		if err != nil {
			return err
		}
		if tok != "" {
			hreq.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return nil
}

// challenge answers a 401: it records the host's scheme and gets what it asks for. It returns
// true when the request should be sent again.
func (c *Client) challenge(ctx context.Context, r *req, sent *http.Request, headers []string) (bool, error) {
	var chs []Challenge
	for _, h := range headers {
		chs = append(chs, ParseChallenges(h)...)
	}
	var bearer, basic *Challenge
	for i := range chs {
		switch chs[i].Scheme {
		case "bearer":
			if bearer == nil {
				bearer = &chs[i]
			}
		case "basic":
			if basic == nil {
				basic = &chs[i]
			}
		}
	}
	ha := c.hostAuth(r.host)
	switch {
	case bearer != nil:
		realm := bearer.Params["realm"]
		if realm == "" {
			return false, fmt.Errorf("%s %s: bearer challenge without a realm: %w", r.method, redactURL(r.url), ErrUnauthorized)
		}
		ha.mu.Lock()
		ha.scheme, ha.realm, ha.service = "bearer", realm, bearer.Params["service"]
		ha.mu.Unlock()
		refused, _ := strings.CutPrefix(sent.Header.Get("Authorization"), "Bearer ")
		_, err := c.token(ctx, ha, r, strings.Fields(bearer.Params["scope"]), refused)
		return err == nil, err
	case basic != nil:
		ha.mu.Lock()
		ha.scheme = "basic"
		ha.mu.Unlock()
		if _, _, sentBasic := sent.BasicAuth(); sentBasic {
			return false, nil // refused: the caller reports the 401
		}
		cred, err := c.credential(ctx, r.host, r.repo)
		if err != nil {
			return false, err
		}
		return cred.Username != "" || cred.Password != "", nil
	}
	return false, nil
}

// token returns a bearer token for the request's scopes (plus extra ones a challenge named),
// from the cache unless it is missing, expired, or the one the registry just refused.
func (c *Client) token(ctx context.Context, ha *hostAuth, r *req, extra []string, refused string) (string, error) {
	own := slices.Clone(r.scopes)
	slices.Sort(own)
	key := strings.Join(slices.Compact(own), " ")
	for {
		ha.mu.Lock()
		e := ha.tokens[key]
		stale := false
		if e != nil {
			select {
			case <-e.ready:
				stale = e.err != nil || time.Now().After(e.expires) || (refused != "" && e.token == refused)
			default:
			}
		}
		if e == nil || stale {
			ne := &tokenEntry{ready: make(chan struct{})}
			ha.tokens[key] = ne
			realm, service := ha.realm, ha.service
			ha.mu.Unlock()
			scopes := append(slices.Clone(own), extra...)
			slices.Sort(scopes)
			ne.token, ne.expires, ne.err = c.fetchToken(ctx, realm, service, r.host, r.repo, slices.Compact(scopes))
			close(ne.ready)
			return ne.token, ne.err
		}
		ha.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if e.err != nil {
			return "", e.err
		}
		if refused == "" || e.token != refused {
			return e.token, nil
		}
	}
}

// tokenResponse is the Docker token spec's answer (token, or OAuth2's access_token).
type tokenResponse struct {
	Token        string    `json:"token"`
	AccessToken  string    `json:"access_token"`
	ExpiresIn    int       `json:"expires_in"`
	IssuedAt     time.Time `json:"issued_at"`
	RefreshToken string    `json:"refresh_token"`
}

// fetchToken asks the realm for a token: GET with service and scope parameters (with basic
// credentials, or anonymously), or the OAuth2 refresh-token POST when we hold an identity token.
func (c *Client) fetchToken(ctx context.Context, realm, service, host, repo string, scopes []string) (string, time.Time, error) {
	cred, err := c.credential(ctx, host, repo)
	if err != nil {
		return "", time.Time{}, err
	}
	if cred.RegistryToken != "" {
		return cred.RegistryToken, time.Now().Add(time.Hour), nil
	}
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", time.Time{}, fmt.Errorf("token realm %q of %s is not an http(s) URL: %w", clip(realm, 100), host, ErrUnauthorized)
	}
	if u.Scheme == "http" && !cred.empty() && !c.plainHTTP(u.Host) {
		return "", time.Time{}, fmt.Errorf("token realm %s of %s is plain HTTP: credentials are only sent in clear to loopback or insecure hosts: %w",
			u.Redacted(), host, ErrUnauthorized)
	}
	r := &req{noAuth: true, host: host, repo: repo}
	if cred.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cred.IdentityToken}, "client_id": {c.cfg.UserAgent}}
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		enc := form.Encode()
		r.method, r.url = http.MethodPost, u.String()
		r.header = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		r.body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
		r.length = int64(len(enc))
	} else {
		q := u.Query()
		if service != "" {
			q.Set("service", service)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		u.RawQuery = q.Encode()
		r.method, r.url = http.MethodGet, u.String()
		if cred.Username != "" || cred.Password != "" {
			r.header = http.Header{"Authorization": {"Basic " + basicAuth(cred.Username, cred.Password)}}
		}
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token for %s: %w", strings.Join(scopes, " "), err)
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return "", time.Time{}, fmt.Errorf("token for %s from %s: %w", strings.Join(scopes, " "), u.Redacted(), err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return "", time.Time{}, fmt.Errorf("token response from %s: %w: %w", u.Redacted(), err, ErrUnauthorized)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", time.Time{}, fmt.Errorf("token response from %s has no token: %w", u.Redacted(), ErrUnauthorized)
	}
	// The token spec: 60 seconds unless it says otherwise. Renew a little early, so that a token
	// does not expire between our check and the registry's.
	life := 60 * time.Second
	if tr.ExpiresIn > 0 {
		life = time.Duration(tr.ExpiresIn) * time.Second
	}
	return tok, time.Now().Add(life - min(life/10, 10*time.Second)), nil
}

func basicAuth(user, pass string) string {
	r := http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}
