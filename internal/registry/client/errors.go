package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	specv1 "github.com/opencontainers/distribution-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Error classes beyond errdefs' (errdefs.ErrNotFound, ErrInvalidArgument and ErrUnavailable are
// also used): test with errors.Is.
var (
	// ErrUnauthorized: the registry wants credentials we do not have, or refused those we sent.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied: authenticated, but not allowed.
	ErrDenied = errors.New("denied")
	// ErrUnsupported: the registry does not offer the operation (405, UNSUPPORTED).
	ErrUnsupported = errors.New("unsupported")
	// ErrDigestMismatch: content received from the registry is not what its descriptor says.
	ErrDigestMismatch = errors.New("digest mismatch")
)

// ResponseError is an unexpected answer from a registry: the request, the status, and the spec's
// error list decoded from the body (or the start of the body when it is not the spec's JSON).
type ResponseError struct {
	Method string
	URL    string
	Status int
	Errors []specv1.ErrorInfo
	// Body is the start of a body that is not the spec's error JSON.
	Body string
}

func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	for i, ei := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(ei.Code)
		if ei.Message != "" {
			b.WriteString(": " + ei.Message)
		}
		if len(ei.Detail) > 0 && string(ei.Detail) != "null" {
			b.WriteString(" (" + clip(string(ei.Detail), 200) + ")")
		}
	}
	if len(e.Errors) == 0 && e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	return b.String()
}

// HasCode reports whether the registry answered with the spec error code (e.g. "BLOB_UNKNOWN").
func (e *ResponseError) HasCode(code string) bool {
	for _, ei := range e.Errors {
		if ei.Code == code {
			return true
		}
	}
	return false
}

// Unwrap returns the error's class, from the status and the spec's codes.
func (e *ResponseError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized || e.HasCode("UNAUTHORIZED"):
		return ErrUnauthorized
	case e.Status == http.StatusForbidden || e.HasCode("DENIED"):
		return ErrDenied
	case e.Status == http.StatusNotFound:
		return errdefs.ErrNotFound
	case e.Status == http.StatusMethodNotAllowed || e.Status == http.StatusNotImplemented || e.HasCode("UNSUPPORTED"):
		return ErrUnsupported
	case e.Status == http.StatusTooManyRequests || e.Status >= 500:
		return errdefs.ErrUnavailable
	case e.Status >= 400:
		return errdefs.ErrInvalidArgument
	}
	return nil
}

// responseError reads (a bounded part of) resp's body into a ResponseError and closes it.
func responseError(resp *http.Response) *ResponseError {
	defer resp.Body.Close()
	e := &ResponseError{Method: resp.Request.Method, URL: redactURL(resp.Request.URL.String()), Status: resp.StatusCode}
	if resp.Request.Method == http.MethodHead {
		return e
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er specv1.ErrorResponse
	if json.Unmarshal(b, &er) == nil && len(er.Errors) > 0 {
		e.Errors = er.Errors
	} else if s := strings.TrimSpace(string(b)); s != "" {
		e.Body = clip(s, 200)
	}
	return e
}

// redactURL drops the query of upload URLs, which some registries use to carry upload state or
// signatures that do not belong in logs.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 && strings.Contains(u[:i], "/blobs/uploads/") {
		return u[:i] + "?…"
	}
	return u
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
