package registry

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	specv1 "github.com/opencontainers/distribution-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/reference"
	"github.com/berth-dev/berth/internal/registry/storage"
)

// manifest serves GET, HEAD, PUT and DELETE of /v2/<name>/manifests/<reference>.
func (s *Server) manifest(w http.ResponseWriter, r *http.Request, rt route) {
	if err := reference.ValidateName(rt.name); err != nil {
		fail(w, r, err)
		return
	}
	ref, err := reference.ParseReference(rt.arg)
	if err != nil {
		if errors.Is(err, reference.ErrTagInvalid) && r.Method != http.MethodPut {
			// no manifest can have that name: it is unknown (a push with it is invalid)
			writeError(w, r, &apiError{http.StatusNotFound, codeManifestUnknown, "manifest unknown to registry", err.Error()})
			return
		}
		fail(w, r, err)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.getManifest(w, r, rt.name, ref)
	case http.MethodPut:
		s.putManifest(w, r, rt.name, ref)
	case http.MethodDelete:
		s.deleteManifest(w, r, rt.name, ref)
	}
}

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, name string, ref reference.Reference) {
	var m *storage.Manifest
	var err error
	if r.Method == http.MethodHead {
		m, err = s.store.StatManifest(r.Context(), name, ref)
	} else {
		m, err = s.store.GetManifest(r.Context(), name, ref)
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{m.MediaType}
	h["Docker-Content-Digest"] = []string{string(m.Digest)}
	h["Etag"] = []string{`"` + string(m.Digest) + `"`}
	h["Content-Length"] = []string{strconv.FormatInt(m.Size, 10)}
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.Data)
	}
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, name string, ref reference.Reference) {
	limit := s.cfg.maxManifest()
	if r.ContentLength > limit {
		writeError(w, r, &apiError{http.StatusRequestEntityTooLarge, codeManifestInvalid, "manifest too large",
			"the limit is " + strconv.FormatInt(limit, 10) + " bytes"})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, &apiError{http.StatusRequestEntityTooLarge, codeManifestInvalid, "manifest too large",
				"the limit is " + strconv.FormatInt(limit, 10) + " bytes"})
			return
		}
		writeError(w, r, &apiError{http.StatusBadRequest, codeManifestInvalid, "reading the manifest failed", err.Error()})
		return
	}
	// The digest is of the bytes as sent, in the algorithm of the reference (sha512 stays sha512).
	var d digest.Digest
	if ref.Digest != "" {
		d = ref.Digest.Algorithm().FromBytes(data)
		if d != ref.Digest {
			writeError(w, r, &apiError{http.StatusBadRequest, codeDigestInvalid, "provided digest did not match uploaded content",
				"the manifest's " + string(d.Algorithm()) + " digest is " + string(d)})
			return
		}
	} else {
		d = digest.SHA256.FromBytes(data)
	}
	parsed, err := manifest.Parse(r.Header.Get("Content-Type"), data)
	if err != nil {
		fail(w, r, err)
		return
	}
	var tags []string
	if ref.Tag != "" {
		tags = append(tags, ref.Tag)
	}
	for _, t := range r.URL.Query()["tag"] {
		if err := reference.ValidateTag(t); err != nil {
			fail(w, r, err)
			return
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	if err := s.store.PutManifest(r.Context(), name, storage.ManifestPut{
		Digest: d, MediaType: parsed.MediaType, Data: data, Parsed: parsed, Tags: tags,
	}); err != nil {
		fail(w, r, err)
		return
	}
	h := w.Header()
	h["Location"] = []string{"/v2/" + name + "/manifests/" + string(d)}
	h["Docker-Content-Digest"] = []string{string(d)}
	if parsed.Subject != nil {
		h["Oci-Subject"] = []string{string(parsed.Subject.Digest)}
	}
	if ref.Digest != "" && len(tags) > 0 {
		h["Oci-Tag"] = tags
	}
	h["Content-Length"] = zeroLength
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, name string, ref reference.Reference) {
	if s.cfg.Delete.Disabled {
		writeError(w, r, newError(http.StatusMethodNotAllowed, codeUnsupported, "deletes are disabled"))
		return
	}
	var err error
	if ref.Tag != "" {
		if !s.cfg.Delete.Tags {
			writeError(w, r, &apiError{http.StatusMethodNotAllowed, codeUnsupported, "deleting a tag is disabled",
				"delete the manifest by digest, or enable delete.tags in the configuration"})
			return
		}
		err = s.store.DeleteTag(r.Context(), name, ref.Tag)
	} else {
		err = s.store.DeleteManifest(r.Context(), name, ref.Digest)
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	w.Header()["Content-Length"] = zeroLength
	w.WriteHeader(http.StatusAccepted)
}

// maxPage bounds n: a client asking for more gets this many and a Link to the rest.
const maxPage = 10000

// page applies the spec's n/last pagination to a sorted list. It returns the page and the query
// of the next one ("" when this is the last).
func page(r *http.Request, all []string) ([]string, string, *apiError) {
	q := r.URL.Query()
	n := -1
	if ns := q.Get("n"); ns != "" {
		v, err := strconv.Atoi(ns)
		if err != nil || v < 0 {
			return nil, "", &apiError{http.StatusBadRequest, codeUnsupported, "invalid n", "n must be a number >= 0"}
		}
		n = v
	}
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	if n < 0 && len(all) <= maxPage {
		return all, "", nil
	}
	if n < 0 || n > maxPage {
		n = maxPage
	}
	if len(all) <= n {
		return all, "", nil
	}
	out := all[:n]
	if n == 0 {
		return out, "", nil
	}
	next := url.Values{"last": {out[n-1]}, "n": {strconv.Itoa(n)}}
	return out, next.Encode(), nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType []string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fail(w, r, err)
		return
	}
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	_, _ = w.Write(b)
}

// tags serves GET /v2/<name>/tags/list, sorted, with n/last pagination and a Link to the next page.
func (s *Server) tags(w http.ResponseWriter, r *http.Request, rt route) {
	if err := reference.ValidateName(rt.name); err != nil {
		fail(w, r, err)
		return
	}
	all, err := s.store.Tags(r.Context(), rt.name)
	if err != nil {
		fail(w, r, err)
		return
	}
	tags, next, aerr := page(r, all)
	if aerr != nil {
		writeError(w, r, aerr)
		return
	}
	if next != "" {
		w.Header().Set("Link", "</v2/"+rt.name+"/tags/list?"+next+`>; rel="next"`)
	}
	writeJSON(w, r, jsonContentType, specv1.TagList{Name: rt.name, Tags: tags})
}

// catalog serves GET /v2/_catalog, like tags.
func (s *Server) catalog(w http.ResponseWriter, r *http.Request) {
	all, err := s.store.Repositories(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	if all == nil {
		all = []string{}
	}
	repos, next, aerr := page(r, all)
	if aerr != nil {
		writeError(w, r, aerr)
		return
	}
	if next != "" {
		w.Header().Set("Link", "</v2/_catalog?"+next+`>; rel="next"`)
	}
	writeJSON(w, r, jsonContentType, specv1.RepositoryList{Repositories: repos})
}

var indexContentType = []string{ocispec.MediaTypeImageIndex}

// referrers serves GET /v2/<name>/referrers/<digest>: always an index, empty when nothing refers
// to the digest (or the repository does not exist), filtered by artifactType when asked.
func (s *Server) referrers(w http.ResponseWriter, r *http.Request, rt route) {
	if err := reference.ValidateName(rt.name); err != nil {
		fail(w, r, err)
		return
	}
	d, err := reference.ParseDigest(rt.arg)
	if err != nil {
		fail(w, r, err)
		return
	}
	descs, err := s.store.Referrers(r.Context(), rt.name, d)
	if err != nil {
		fail(w, r, err)
		return
	}
	if at := r.URL.Query().Get("artifactType"); at != "" {
		descs = slices.DeleteFunc(descs, func(d ocispec.Descriptor) bool { return d.ArtifactType != at })
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, r, indexContentType, ocispec.Index{
		Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: descs,
	})
}
