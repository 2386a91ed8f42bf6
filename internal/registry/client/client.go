package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// Credential is what a registry or its token server is given to authenticate us.
type Credential struct {
	Username, Password string
	// IdentityToken is an OAuth2 refresh token (docker login's "identitytoken"), exchanged at the
	// token realm for access tokens.
	IdentityToken string
	// RegistryToken is a bearer token sent to the registry as is.
	RegistryToken string
}

func (c Credential) empty() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

// CredentialFunc returns the credentials for a repository on a host (host as in the reference,
// with its port). A zero Credential and nil error mean anonymous access. It is called whenever
// the client needs to authenticate, from several goroutines at once, so it should be cheap
// (CredentialsFromFiles caches the files it reads).
type CredentialFunc func(ctx context.Context, host, repository string) (Credential, error)

// Config configures a Client. The zero value works: anonymous, HTTPS except loopback.
type Config struct {
	// DefaultHost is the registry of references written without a host; empty (the default)
	// makes such a reference an error.
	DefaultHost string
	// Insecure lists hosts ("host" for any port, or "host:port") spoken to in plain HTTP. Loopback
	// hosts (localhost, 127.0.0.0/8, ::1) always are.
	Insecure []string
	// Credentials supplies credentials on a challenge; nil means anonymous only.
	Credentials CredentialFunc
	// Transport carries the requests (default: a clone of http.DefaultTransport). Set it for
	// custom TLS roots or client certificates.
	Transport http.RoundTripper
	// UserAgent is sent with every request (default "berth").
	UserAgent string
	// Retry is the policy for transient failures.
	Retry RetryPolicy
	// ChunkSize is the size of a PATCH of a chunked upload (default 32 MiB; a registry's
	// OCI-Chunk-Min-Length raises it).
	ChunkSize int64
	// MonolithicMax is the largest blob pushed in a single PUT (default ChunkSize); larger ones
	// are uploaded in chunks, which resume after a broken connection.
	MonolithicMax int64
	// Concurrency bounds the blobs transferred at once by Pull and Push (default 4).
	Concurrency int
	// MaxManifestBytes bounds a manifest read from a registry or a Source (default 4 MiB, the
	// size the spec asks registries to accept).
	MaxManifestBytes int64
}

// Client talks to registries. It is safe for concurrent use; it caches authentication per host
// and token per scope for its lifetime.
type Client struct {
	cfg   Config
	retry RetryPolicy
	hc    *http.Client
	mu    sync.Mutex
	hosts map[string]*hostAuth
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	for _, h := range cfg.Insecure {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return nil, fmt.Errorf("insecure host %q: want host or host:port: %w", h, errdefs.ErrInvalidArgument)
		}
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 32 << 20
	}
	if cfg.MonolithicMax <= 0 {
		cfg.MonolithicMax = cfg.ChunkSize
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxManifestBytes <= 0 {
		cfg.MaxManifestBytes = 4 << 20
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "berth"
	}
	rt := cfg.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Concurrent layer transfers to one registry each want a connection of their own.
		t.MaxIdleConnsPerHost = max(cfg.Concurrency*2, 8)
		rt = t
	}
	return &Client{
		cfg:   cfg,
		retry: cfg.Retry.withDefaults(),
		hc:    &http.Client{Transport: rt},
		hosts: map[string]*hostAuth{},
	}, nil
}

// ParseReference parses HOST/NAME:TAG@DIGEST, with the client's default host if there is one.
func (c *Client) ParseReference(s string) (reference.Image, error) {
	return reference.ParseImage(s, c.cfg.DefaultHost)
}

// plainHTTP reports whether host (host[:port]) is spoken to without TLS.
func (c *Client) plainHTTP(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if slices.Contains(c.cfg.Insecure, host) || slices.Contains(c.cfg.Insecure, name) {
		return true
	}
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

func (c *Client) baseURL(host string) string {
	if c.plainHTTP(host) {
		return "http://" + host
	}
	return "https://" + host
}

// req is one logical request; do sends it, again on transient failures and after answering an
// authentication challenge.
type req struct {
	method string
	url    string // absolute
	header http.Header
	// body opens the request body afresh for each attempt (nil: no body); length is its size.
	body   func() (io.ReadCloser, error)
	length int64
	// host and repo name what credentials are for; scopes are the token scopes the request needs.
	host, repo string
	scopes     []string
	// noRetry returns transient failures to the caller (chunked uploads resume instead).
	noRetry bool
	// noAuth sends the request as is (token requests).
	noAuth bool
}

func (c *Client) newRequest(ctx context.Context, r *req) (*http.Request, error) {
	var body io.ReadCloser
	if r.body != nil {
		b, err := r.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	hreq, err := http.NewRequestWithContext(ctx, r.method, r.url, nil)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", r.method, redactURL(r.url), err)
	}
	for k, v := range r.header {
		hreq.Header[k] = v
	}
	hreq.Header.Set("User-Agent", c.cfg.UserAgent)
	if body != nil {
		if r.length == 0 {
			body.Close()
			hreq.Body = http.NoBody
		} else {
			hreq.Body = body
		}
		hreq.ContentLength = r.length
	}
	return hreq, nil
}

// do sends r and returns the response of the last attempt, whatever its status: the caller checks
// it. Transient transport failures that outlast the retries are errors of class
// errdefs.ErrUnavailable.
func (c *Client) do(ctx context.Context, r *req) (*http.Response, error) {
	if !r.noAuth {
		if ha := c.hostAuth(r.host); !ha.known.Load() {
			ha.first.Lock()
			resp, err := c.send(ctx, r)
			if err == nil {
				ha.known.Store(true)
			}
			ha.first.Unlock()
			return resp, err
		}
	}
	return c.send(ctx, r)
}

func (c *Client) send(ctx context.Context, r *req) (*http.Response, error) {
	challenged := false
	for attempt := 1; ; attempt++ {
		hreq, err := c.newRequest(ctx, r)
		if err != nil {
			return nil, err
		}
		if !r.noAuth {
			if err := c.authorize(ctx, hreq, r); err != nil {
				if hreq.Body != nil {
					hreq.Body.Close()
				}
				return nil, err
			}
		}
		resp, err := c.hc.Do(hreq)
		if err != nil {
			if !r.noRetry && attempt < c.retry.Attempts && retryableErr(ctx, err) {
				d := c.retry.backoff(attempt)
				slog.DebugContext(ctx, "registry request failed, retrying", "method", r.method, "url", redactURL(r.url), "err", err, "in", d)
				if werr := wait(ctx, d); werr != nil {
					return nil, werr
				}
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !retryableErr(ctx, err) {
				return nil, err // a certificate that does not verify is not a registry that is down
			}
			return nil, fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && !r.noAuth && !challenged {
			challenged = true
			retry, err := c.challenge(ctx, r, hreq, resp.Header.Values("WWW-Authenticate"))
			if err != nil {
				drain(resp)
				return nil, err
			}
			if retry {
				drain(resp)
				attempt-- // answering a challenge is not a failure
				continue
			}
			return resp, nil
		}
		if retryableStatus(resp.StatusCode) && !r.noRetry && attempt < c.retry.Attempts {
			d := c.retry.backoff(attempt)
			if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				if ra > c.retry.MaxRetryAfter {
					return resp, nil
				}
				d = ra
			}
			slog.DebugContext(ctx, "registry busy, retrying", "method", r.method, "url", redactURL(r.url), "status", resp.StatusCode, "in", d)
			drain(resp)
			if werr := wait(ctx, d); werr != nil {
				return nil, werr
			}
			continue
		}
		return resp, nil
	}
}

// drain reads a little of a body we do not need, so that the connection can be reused, and
// closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// expect returns nil when resp has one of the statuses, and otherwise a *ResponseError (closing
// the body).
func expect(resp *http.Response, statuses ...int) error {
	if slices.Contains(statuses, resp.StatusCode) {
		return nil
	}
	return responseError(resp)
}

func repoScope(repo string, actions ...string) string {
	return "repository:" + repo + ":" + strings.Join(actions, ",")
}

// Path builders. Names, tags and digests are validated by the reference package: none needs
// escaping.
func (c *Client) manifestURL(host, name, ref string) string {
	return c.baseURL(host) + "/v2/" + name + "/manifests/" + ref
}

func (c *Client) blobURL(host, name string, d string) string {
	return c.baseURL(host) + "/v2/" + name + "/blobs/" + d
}

// sameOrigin guards links and locations a registry hands us: the client follows them only on
// the registry itself, so that credentials are never sent elsewhere by a Link header.
func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// parseRangeEnd reads an upload's Range header ("0-N", or "bytes=0-N") and returns the offset
// after it. "0-0" is an empty upload (what registries send for none, as there is no way to say it).
func parseRangeEnd(h string) (int64, error) {
	h = strings.TrimPrefix(strings.TrimSpace(h), "bytes=")
	a, b, ok := strings.Cut(h, "-")
	if !ok {
		return 0, fmt.Errorf("upload Range %q: want 0-END", clip(h, 40))
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err := errors.Join(err1, err2); err != nil || start != 0 || end < 0 {
		return 0, fmt.Errorf("upload Range %q: want 0-END", clip(h, 40))
	}
	if end == 0 {
		return 0, nil
	}
	return end + 1, nil
}
