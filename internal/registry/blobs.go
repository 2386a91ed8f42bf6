package registry

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync"

	"github.com/berth-dev/berth/internal/registry/reference"
	"github.com/berth-dev/berth/internal/registry/storage"
)

var (
	octetStream = []string{"application/octet-stream"}
	acceptBytes = []string{"bytes"}
	immutable   = []string{"max-age=31536000"}
	zeroLength  = []string{"0"}
)

// blob serves GET, HEAD and DELETE of /v2/<name>/blobs/<digest>.
func (s *Server) blob(w http.ResponseWriter, r *http.Request, rt route) {
	if err := reference.ValidateName(rt.name); err != nil {
		fail(w, r, err)
		return
	}
	d, err := reference.ParseDigest(rt.arg)
	if err != nil {
		fail(w, r, err)
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodDelete {
		if s.cfg.Delete.Disabled {
			writeError(w, r, newError(http.StatusMethodNotAllowed, codeUnsupported, "deletes are disabled"))
			return
		}
		if err := s.store.DeleteBlob(ctx, rt.name, d); err != nil {
			fail(w, r, err)
			return
		}
		w.Header()["Content-Length"] = zeroLength
		w.WriteHeader(http.StatusAccepted)
		return
	}
	h := w.Header()
	etag := `"` + string(d) + `"`
	if r.Method == http.MethodHead {
		size, err := s.store.StatBlob(ctx, rt.name, d)
		if err != nil {
			fail(w, r, err)
			return
		}
		h["Content-Type"] = octetStream
		h["Docker-Content-Digest"] = []string{string(d)}
		h["Content-Length"] = []string{strconv.FormatInt(size, 10)}
		h["Accept-Ranges"] = acceptBytes
		h["Etag"] = []string{etag}
		return
	}
	f, size, err := s.store.OpenBlob(ctx, rt.name, d)
	if err != nil {
		fail(w, r, err)
		return
	}
	defer f.Close()
	h["Docker-Content-Digest"] = []string{string(d)}
	h["Etag"] = []string{etag}
	h["Cache-Control"] = immutable
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	status := http.StatusOK
	start, n := int64(0), size
	if rh := r.Header.Get("Range"); rh != "" {
		a, k, ok, unsat := parseRange(rh, size)
		switch {
		case unsat:
			// RFC 9110: 416 with the representation's length; the spec defines no error body
			for _, k := range contentHeaders {
				delete(h, k)
			}
			h["Content-Range"] = []string{"bytes */" + strconv.FormatInt(size, 10)}
			h["Content-Length"] = zeroLength
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		case ok:
			start, n, status = a, k, http.StatusPartialContent
			h["Content-Range"] = []string{"bytes " + strconv.FormatInt(a, 10) + "-" + strconv.FormatInt(a+k-1, 10) + "/" + strconv.FormatInt(size, 10)}
			if _, err := f.Seek(start, io.SeekStart); err != nil {
				fail(w, r, err)
				return
			}
		}
	}
	h["Content-Type"] = octetStream
	h["Accept-Ranges"] = acceptBytes
	h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	w.WriteHeader(status)
	body := &io.LimitedReader{R: f, N: n}
	if n >= 1<<20 && loopbackPeer(r) {
		// Copied through a buffer, not sent with sendfile(2), for a client on this host: over
		// loopback the receiver's read is then the only copy, made on the client's time from
		// page-cache memory no CPU cache holds, and a pulling client (hashing, writing files) is
		// the slower side. Copied here, the cold read is the registry's and the client copies from
		// socket buffers still in cache: crane pulls 256 MiB about a fifth faster on two CPUs.
		// Small blobs gain nothing measurable and keep sendfile.
		bp := sendBufs.Get().(*[]byte)
		_, _ = io.CopyBuffer(writerOnly{w}, body, *bp)
		sendBufs.Put(bp)
		return
	}
	// *os.File under a LimitedReader: net/http sends it with sendfile(2)
	_, _ = io.Copy(w, body)
}

var sendBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// writerOnly hides a ResponseWriter's ReadFrom, which would use sendfile(2).
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

// loopbackPeer reports whether the request came from this host over loopback.
func loopbackPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().IsLoopback()
}

func blobURL(name string, d string) string { return "/v2/" + name + "/blobs/" + d }

func uploadURL(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

func rangeHeader(off int64) []string {
	if off <= 0 {
		return []string{"0-0"}
	}
	return []string{"0-" + strconv.FormatInt(off-1, 10)}
}

// upload serves the upload endpoints: POST .../blobs/uploads/ (start, monolithic, or mount), and
// GET (status), PATCH (chunk), PUT (commit) and DELETE (cancel) of .../blobs/uploads/<id>.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, rt route) {
	if err := reference.ValidateName(rt.name); err != nil {
		fail(w, r, err)
		return
	}
	if rt.arg == "" {
		s.startUpload(w, r, rt)
		return
	}
	ctx := r.Context()
	h := w.Header()
	id := rt.arg
	switch r.Method {
	case http.MethodGet:
		off, err := s.store.UploadStatus(ctx, rt.name, id)
		if err != nil {
			fail(w, r, err)
			return
		}
		s.uploadHeaders(h, rt.name, id, off)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		if err := s.store.CancelUpload(ctx, rt.name, id); err != nil {
			fail(w, r, err)
			return
		}
		h["Content-Length"] = zeroLength
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		start, length, err := chunkRange(r)
		if err != nil {
			fail(w, r, err)
			return
		}
		off, err := s.store.WriteUpload(ctx, rt.name, id, start, length, r.Body)
		if err != nil {
			s.uploadError(w, r, rt.name, id, err)
			return
		}
		s.uploadHeaders(h, rt.name, id, off)
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPut:
		dq := r.URL.Query().Get("digest")
		if dq == "" {
			writeError(w, r, &apiError{http.StatusBadRequest, codeDigestInvalid, "digest parameter missing", "PUT to an upload needs ?digest="})
			return
		}
		d, err := reference.ParseDigest(dq)
		if err != nil {
			fail(w, r, err)
			return
		}
		start, length, err := chunkRange(r)
		if err != nil {
			fail(w, r, err)
			return
		}
		size, err := s.store.CommitUpload(ctx, rt.name, id, d, start, length, r.Body)
		if err != nil {
			s.uploadError(w, r, rt.name, id, err)
			return
		}
		s.created(w, rt.name, string(d), size)
	}
}

// chunkRange reads a chunk's Content-Range and Content-Length: start -1 when the chunk has no
// range (a stream, appended), length -1 when unknown.
func chunkRange(r *http.Request) (start, length int64, err error) {
	start, length = -1, r.ContentLength
	if cr := r.Header.Get("Content-Range"); cr != "" {
		a, n, ok := parseContentRange(cr)
		if !ok {
			return 0, 0, &apiError{http.StatusBadRequest, codeBlobUploadInvalid, "invalid Content-Range", "want <start>-<end>, got " + clip(cr)}
		}
		if length >= 0 && length != n {
			return 0, 0, &apiError{http.StatusBadRequest, codeSizeInvalid, "Content-Range and Content-Length disagree",
				"the range is " + strconv.FormatInt(n, 10) + " bytes, Content-Length " + strconv.FormatInt(length, 10)}
		}
		start, length = a, n
	}
	return start, length, nil
}

func (s *Server) uploadHeaders(h http.Header, name, id string, off int64) {
	h["Location"] = []string{uploadURL(name, id)}
	h["Range"] = rangeHeader(off)
	h["Docker-Upload-Uuid"] = []string{id}
	h["Content-Length"] = zeroLength
}

// uploadError sends an upload failure; a chunk out of order (416) also says where the upload is,
// so that the client can go on from there.
func (s *Server) uploadError(w http.ResponseWriter, r *http.Request, name, id string, err error) {
	var re *storage.RangeError
	if errors.As(err, &re) {
		h := w.Header()
		h["Location"] = []string{uploadURL(name, id)}
		h["Range"] = rangeHeader(re.Offset)
		h["Docker-Upload-Uuid"] = []string{id}
	}
	fail(w, r, err)
}

func (s *Server) created(w http.ResponseWriter, name, d string, size int64) {
	h := w.Header()
	h["Location"] = []string{blobURL(name, d)}
	h["Docker-Content-Digest"] = []string{d}
	h["Content-Length"] = zeroLength
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, rt route) {
	ctx := r.Context()
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := reference.ParseDigest(m)
		if err != nil {
			fail(w, r, err)
			return
		}
		from := q.Get("from")
		mount := false
		if from != "" {
			if err := reference.ValidateName(from); err != nil {
				fail(w, r, err)
				return
			}
			mount = s.can(r, access{typ: "repository", name: from, actions: []string{"pull"}})
		} else {
			mount = s.cfg.mountWithoutFrom()
		}
		if mount {
			size, err := s.store.MountBlob(ctx, rt.name, from, d)
			if err == nil {
				s.created(w, rt.name, string(d), size)
				return
			}
			if !errors.Is(err, storage.ErrBlobUnknown) {
				fail(w, r, err)
				return
			}
		}
		// not mountable: an ordinary upload session, as the spec says
	} else if dq := q.Get("digest"); dq != "" {
		d, err := reference.ParseDigest(dq)
		if err != nil {
			fail(w, r, err)
			return
		}
		size, err := s.store.PutBlob(ctx, rt.name, d, r.ContentLength, r.Body)
		if err != nil {
			fail(w, r, err)
			return
		}
		s.created(w, rt.name, string(d), size)
		return
	}
	id, err := s.store.NewUpload(ctx, rt.name)
	if err != nil {
		fail(w, r, err)
		return
	}
	s.uploadHeaders(w.Header(), rt.name, id, 0)
	w.WriteHeader(http.StatusAccepted)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
