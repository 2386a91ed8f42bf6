package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// RetryPolicy says how often and how patiently a request that failed for a transient reason
// (connection error, 429, 5xx) is tried again. A 4xx answer of the spec is never retried.
type RetryPolicy struct {
	// Attempts is the number of tries in all (default 5; 1 turns retries off).
	Attempts int
	// MinDelay is the first backoff (default 200ms); each retry doubles it, up to MaxDelay
	// (default 10s), and the wait is drawn uniformly from [delay/2, delay] (jitter).
	MinDelay, MaxDelay time.Duration
	// MaxRetryAfter bounds how long a Retry-After header can make us wait (default 60s); a longer
	// one ends the retries.
	MaxRetryAfter time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 5
	}
	if p.MinDelay <= 0 {
		p.MinDelay = 200 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 10 * time.Second
	}
	if p.MaxDelay < p.MinDelay {
		p.MaxDelay = p.MinDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = time.Minute
	}
	return p
}

// backoff is the wait before retry number n (1 for the first retry).
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.MinDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	half := d / 2
	return half + rand.N(d-half+1)
}

// wait sleeps for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryableStatus: rate limiting and server-side failures. 501 and 505 say the server will never
// do it, so they are final.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout ||
		(code >= 500 && code != http.StatusNotImplemented && code != http.StatusHTTPVersionNotSupported)
}

// retryableErr: transport failures are transient, except cancellation and TLS verification
// failures (trying again gets the same certificate).
func retryableErr(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	if errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &cv) || errors.As(err, &rh) {
		return false
	}
	return true
}

// transient classifies an error of a whole operation: a registry's answer by its status, our own
// findings (invalid answers, digest mismatches, refused credentials, a failing Source) as final,
// and transport failures as retryableErr does.
func transient(ctx context.Context, err error) bool {
	var re *ResponseError
	if errors.As(err, &re) {
		return retryableStatus(re.Status)
	}
	var se *sourceError
	if errors.As(err, &se) || errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, ErrDigestMismatch) ||
		errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrDenied) {
		return false
	}
	return retryableErr(ctx, err)
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, 1<<20)) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		d := t.Sub(now)
		return max(d, 0), true
	}
	return 0, false
}
