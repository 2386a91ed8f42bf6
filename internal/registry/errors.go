package registry

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	specv1 "github.com/opencontainers/distribution-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/reference"
	"github.com/berth-dev/berth/internal/registry/storage"
)

// The distribution-spec's error codes ("Error Codes" table).
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
)

// apiError is an error response: status, spec code, message and detail.
type apiError struct {
	status  int
	code    string
	message string
	detail  string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newError(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// headers that describe content, which an error response must not carry.
var contentHeaders = []string{"Content-Length", "Content-Range", "Docker-Content-Digest", "Etag", "Accept-Ranges", "Cache-Control", "Oci-Subject"}

var jsonContentType = []string{"application/json; charset=utf-8"}

// writeError sends e as the spec's JSON error body with its status.
func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	h := w.Header()
	for _, k := range contentHeaders {
		delete(h, k)
	}
	body, _ := json.Marshal(specv1.ErrorResponse{Errors: []specv1.ErrorInfo{{Code: e.code, Message: e.message, Detail: e.detail}}})
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// fail maps an error from parsing or storage to a spec error and sends it. Anything unexpected is
// a 500 whose cause is logged, not sent.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, classify(r, err))
}

func classify(r *http.Request, err error) *apiError {
	var ae *apiError
	var re *storage.RangeError
	var mbu *storage.ManifestBlobUnknownError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, reference.ErrNameInvalid):
		return &apiError{http.StatusBadRequest, codeNameInvalid, "invalid repository name", err.Error()}
	case errors.Is(err, reference.ErrDigestInvalid), errors.Is(err, reference.ErrDigestUnsupported), errors.Is(err, storage.ErrDigestInvalid):
		return &apiError{http.StatusBadRequest, codeDigestInvalid, "provided digest did not match uploaded content", err.Error()}
	case errors.Is(err, reference.ErrTagInvalid):
		return &apiError{http.StatusBadRequest, codeManifestInvalid, "invalid tag", err.Error()}
	case errors.Is(err, manifest.ErrInvalid), errors.Is(err, storage.ErrManifestInvalid):
		return &apiError{http.StatusBadRequest, codeManifestInvalid, "manifest invalid", err.Error()}
	case errors.As(err, &mbu):
		return &apiError{http.StatusBadRequest, codeManifestBlobUnknown, "manifest references a manifest or blob unknown to registry", mbu.Digest.String()}
	case errors.Is(err, storage.ErrBlobUnknown):
		return newError(http.StatusNotFound, codeBlobUnknown, "blob unknown to registry")
	case errors.Is(err, storage.ErrUploadUnknown):
		return newError(http.StatusNotFound, codeBlobUploadUnknown, "blob upload unknown to registry")
	case errors.Is(err, storage.ErrManifestUnknown):
		return newError(http.StatusNotFound, codeManifestUnknown, "manifest unknown to registry")
	case errors.Is(err, storage.ErrNameUnknown):
		return newError(http.StatusNotFound, codeNameUnknown, "repository name not known to registry")
	case errors.As(err, &re):
		return &apiError{http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "chunk out of order", err.Error()}
	case errors.Is(err, storage.ErrUploadBusy):
		return &apiError{http.StatusTooManyRequests, codeTooManyRequests, "upload is busy", err.Error()}
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, codeSizeInvalid, "request body too large", err.Error()}
	case errors.Is(err, storage.ErrInvalid):
		return &apiError{http.StatusBadRequest, codeNameInvalid, "invalid request", err.Error()}
	case r.Context().Err() != nil:
		// the client went away; nobody will read this
		return newError(499, codeBlobUploadInvalid, "request cancelled")
	}
	slog.ErrorContext(r.Context(), "registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return newError(http.StatusInternalServerError, codeUnsupported, "internal error")
}
