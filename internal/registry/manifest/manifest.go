package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/reference"
)

// Docker's media types. They are not in any Go module of the standards (Docker's own types live in
// registry implementations we do not import); the manifests themselves are read as image-spec types.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// ErrInvalid is the class of every parse and validation error.
var ErrInvalid = errors.New("invalid manifest")

// Manifest is what the registry needs to know of a manifest it is asked to store.
type Manifest struct {
	// MediaType is one of the four media types the registry stores.
	MediaType string
	// Blobs are the config and layers that must exist in the repository (nondistributable layers
	// with URLs are not included: they are never pushed).
	Blobs []ocispec.Descriptor
	// Manifests are the manifests an index or manifest list refers to.
	Manifests []ocispec.Descriptor
	// Subject is the manifest this one refers to (the referrers API), if any.
	Subject *ocispec.Descriptor
	// ArtifactType is what the referrers API reports: the artifactType field, or for an image
	// manifest without one the config's media type.
	ArtifactType string
	Annotations  map[string]string
}

// IsIndex reports whether mediaType is an index or a Docker manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// Known reports whether mediaType is a manifest media type the registry stores.
func Known(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerManifestList:
		return true
	}
	return false
}

// BaseMediaType strips parameters and white space from a Content-Type value.
func BaseMediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// wire holds every field of both shapes, so that one decode tells which shape the body has and
// whether it contradicts its declared media type.
type wire struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
	// schema 1 only
	FSLayers json.RawMessage `json:"fsLayers"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse validates data as a manifest pushed with the Content-Type contentType (which may be empty,
// in which case the body's mediaType field, or failing that its shape, decides).
func Parse(contentType string, data []byte) (*Manifest, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, invalid("not a JSON object")
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, invalid("%v", err)
	}
	ct := BaseMediaType(contentType)
	if ct == MediaTypeDockerSchema1 || ct == MediaTypeDockerSchema1JWS || w.MediaType == MediaTypeDockerSchema1 ||
		w.MediaType == MediaTypeDockerSchema1JWS || (w.FSLayers != nil && (w.SchemaVersion == nil || *w.SchemaVersion == 1)) {
		return nil, invalid("Docker schema 1 manifests are not supported (deprecated; push schema 2 or OCI)")
	}
	if w.SchemaVersion == nil {
		return nil, invalid("schemaVersion is missing")
	}
	if *w.SchemaVersion != 2 {
		return nil, invalid("schemaVersion %d is not 2", *w.SchemaVersion)
	}
	mt := ct
	switch {
	case mt == "" || mt == "application/json" || mt == "application/octet-stream":
		// No usable Content-Type: trust the body, or its shape.
		mt = w.MediaType
		if mt == "" {
			switch {
			case w.Manifests != nil && w.Config == nil:
				mt = ocispec.MediaTypeImageIndex
			case w.Config != nil && w.Manifests == nil:
				mt = ocispec.MediaTypeImageManifest
			default:
				return nil, invalid("no media type in Content-Type or body, and the shape is ambiguous")
			}
		}
	case w.MediaType != "" && w.MediaType != mt:
		return nil, invalid("Content-Type %q does not match the mediaType field %q", mt, w.MediaType)
	}
	if !Known(mt) {
		return nil, invalid("unsupported manifest media type %q", mt)
	}
	m := &Manifest{MediaType: mt, Annotations: w.Annotations, ArtifactType: w.ArtifactType}
	if w.ArtifactType != "" {
		if err := validMediaType(w.ArtifactType); err != nil {
			return nil, invalid("artifactType: %v", err)
		}
	}
	if w.Subject != nil {
		if err := validDescriptor(w.Subject); err != nil {
			return nil, invalid("subject: %v", err)
		}
		m.Subject = w.Subject
	}
	if IsIndex(mt) {
		if w.Config != nil || w.Layers != nil {
			return nil, invalid("an index has no config or layers")
		}
		if mt == MediaTypeDockerManifestList && w.MediaType == "" {
			return nil, invalid("a Docker manifest list must carry its mediaType")
		}
		for i := range w.Manifests {
			if err := validDescriptor(&w.Manifests[i]); err != nil {
				return nil, invalid("manifests[%d]: %v", i, err)
			}
		}
		m.Manifests = w.Manifests
		return m, nil
	}
	if w.Manifests != nil {
		return nil, invalid("an image manifest has no manifests list")
	}
	if mt == MediaTypeDockerManifest && w.MediaType == "" {
		return nil, invalid("a Docker manifest must carry its mediaType")
	}
	if w.Config == nil {
		return nil, invalid("config is missing")
	}
	if err := validDescriptor(w.Config); err != nil {
		return nil, invalid("config: %v", err)
	}
	m.Blobs = append(make([]ocispec.Descriptor, 0, len(w.Layers)+1), *w.Config)
	for i := range w.Layers {
		l := &w.Layers[i]
		if err := validDescriptor(l); err != nil {
			return nil, invalid("layers[%d]: %v", i, err)
		}
		if nonDistributable(l.MediaType) && len(l.URLs) > 0 {
			continue // fetched from its URLs, never pushed
		}
		m.Blobs = append(m.Blobs, *l)
	}
	if m.ArtifactType == "" && mt == ocispec.MediaTypeImageManifest {
		m.ArtifactType = w.Config.MediaType
	}
	return m, nil
}

// nonDistributable recognises the (deprecated, but still pushed) non-distributable layer types,
// spelled out because the image-spec constants are marked deprecated.
func nonDistributable(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
		MediaTypeDockerForeignLayer:
		return true
	}
	return false
}

func validDescriptor(d *ocispec.Descriptor) error {
	if err := validMediaType(d.MediaType); err != nil {
		return fmt.Errorf("mediaType: %w", err)
	}
	if _, err := reference.ParseDigest(string(d.Digest)); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	if d.Size < 0 {
		return fmt.Errorf("size %d is negative", d.Size)
	}
	for _, u := range d.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("url %q is not an absolute http(s) URL", clip(u))
		}
	}
	if d.Data != nil {
		// image-spec: the embedded data must be the content the digest and size describe.
		if int64(len(d.Data)) != d.Size {
			return fmt.Errorf("data is %d bytes, size says %d", len(d.Data), d.Size)
		}
		if d.Digest.Algorithm().FromBytes(d.Data) != d.Digest {
			return errors.New("data does not match the digest")
		}
	}
	if d.ArtifactType != "" {
		if err := validMediaType(d.ArtifactType); err != nil {
			return fmt.Errorf("artifactType: %w", err)
		}
	}
	return nil
}

// validMediaType checks the RFC 6838 shape the image-spec asks for: type "/" subtype, each
// restricted-name characters, with optional parameters.
func validMediaType(mt string) error {
	if mt == "" {
		return errors.New("empty")
	}
	base := mt
	if i := strings.IndexByte(base, ';'); i >= 0 {
		base = base[:i]
	}
	typ, sub, ok := strings.Cut(base, "/")
	if !ok || !restrictedName(typ) || !restrictedName(sub) {
		return fmt.Errorf("%q is not type/subtype", clip(mt))
	}
	return nil
}

func restrictedName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return false
		}
		if !alnum && !strings.ContainsRune("!#$&-^_.+", rune(c)) {
			return false
		}
	}
	return true
}

// References lists every digest data refers to (config, layers, manifests), leniently: garbage
// collection marks with it, and must not drop content because a stored manifest fails today's
// stricter validation. The subject is not a reference: a referrer does not keep its subject alive.
func References(data []byte) []digest.Digest {
	var w wire
	if json.Unmarshal(data, &w) != nil {
		return nil
	}
	out := make([]digest.Digest, 0, len(w.Layers)+len(w.Manifests)+1)
	add := func(d digest.Digest) {
		if _, err := reference.ParseDigest(string(d)); err == nil {
			out = append(out, d)
		}
	}
	if w.Config != nil {
		add(w.Config.Digest)
	}
	for _, l := range w.Layers {
		add(l.Digest)
	}
	for _, m := range w.Manifests {
		add(m.Digest)
	}
	return out
}

// SubjectOf returns the subject of a stored manifest, leniently (nil when there is none).
func SubjectOf(data []byte) *ocispec.Descriptor {
	var w struct {
		Subject *ocispec.Descriptor `json:"subject"`
	}
	if json.Unmarshal(data, &w) != nil || w.Subject == nil {
		return nil
	}
	if _, err := reference.ParseDigest(string(w.Subject.Digest)); err != nil {
		return nil
	}
	return w.Subject
}

// Descriptor is how the referrers API lists a manifest.
func (m *Manifest) Descriptor(d digest.Digest, size int64) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
