package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Provider opens blobs by descriptor. Implementations: the content store, an OCI layout, archives.
type Provider interface {
	// Open returns the blob's bytes; errdefs.ErrNotFound if it is not there. It does not verify the
	// digest: readers that need that wrap it (VerifyReader).
	Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Image is one platform's image, resolved: its manifest and config, and where its blobs are.
type Image struct {
	// Name is how the image was named (a store name, or the transport reference).
	Name         string
	Target       ocispec.Descriptor // what the name points at: a manifest or an index
	ManifestDesc ocispec.Descriptor
	Manifest     ocispec.Manifest
	ConfigDesc   ocispec.Descriptor
	Config       ocispec.Image
	Provider     Provider
}

// Docker's media types, which are read like their OCI twins.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignGzip  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// Limits on the documents read whole.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 8 << 20
)

// IsIndex reports an index media type (OCI or Docker's manifest list).
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports a manifest media type (OCI or Docker schema 2).
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// Platform selects a manifest from an index.
type Platform struct {
	OS, Architecture, Variant string
}

// HostPlatform is the platform of this machine.
func HostPlatform() Platform {
	p := Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm64" {
		p.Variant = "v8"
	}
	return p
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Matches reports whether a manifest for q runs on p. An unset variant matches any.
func (p Platform) Matches(q *ocispec.Platform) bool {
	if q == nil {
		return false
	}
	if q.OS != p.OS || q.Architecture != p.Architecture {
		return false
	}
	return p.Variant == "" || q.Variant == "" || q.Variant == p.Variant ||
		(p.Architecture == "arm64" && (q.Variant == "v8" || q.Variant == "")) // arm64's only variant
}

// ReadBlob reads a whole blob of at most max bytes and checks its digest.
func ReadBlob(ctx context.Context, p Provider, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max {
		return nil, fmt.Errorf("%s %s: %d bytes, more than the %d allowed: %w", desc.MediaType, desc.Digest, desc.Size, max, errdefs.ErrInvalidArgument)
	}
	rc, err := p.Open(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", desc.Digest, err)
	}
	if desc.Size >= 0 && int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("%s: %d bytes, the descriptor says %d: %w", desc.Digest, len(b), desc.Size, errdefs.ErrInvalidArgument)
	}
	if desc.Digest != "" {
		if err := desc.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("digest %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
		}
		if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
			return nil, fmt.Errorf("blob %s: its content's digest is %s: %w", desc.Digest, got, errdefs.ErrInvalidArgument)
		}
	}
	return b, nil
}

// Resolve reads target (a manifest, or an index from which the manifest for platform is chosen) and
// the config it names.
func Resolve(ctx context.Context, p Provider, name string, target ocispec.Descriptor, platform Platform) (*Image, error) {
	img := &Image{Name: name, Target: target, Provider: p}
	desc := target
	for depth := 0; ; depth++ {
		if depth > 4 {
			return nil, fmt.Errorf("%s: indexes nested more than 4 deep: %w", name, errdefs.ErrInvalidArgument)
		}
		b, err := ReadBlob(ctx, p, desc, MaxManifestSize)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		mt := desc.MediaType
		if mt == "" {
			mt = sniffMediaType(b)
		}
		if IsManifest(mt) {
			if err := json.Unmarshal(b, &img.Manifest); err != nil {
				return nil, fmt.Errorf("%s: manifest %s: %w: %w", name, desc.Digest, err, errdefs.ErrInvalidArgument)
			}
			desc.MediaType = mt
			img.ManifestDesc = desc
			break
		}
		if !IsIndex(mt) {
			return nil, fmt.Errorf("%s: %s has media type %q, not a manifest or an index: %w", name, desc.Digest, mt, errdefs.ErrInvalidArgument)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("%s: index %s: %w: %w", name, desc.Digest, err, errdefs.ErrInvalidArgument)
		}
		next, err := choose(idx, platform)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		desc = next
	}
	if img.Manifest.Config.Digest == "" {
		return nil, fmt.Errorf("%s: manifest %s has no config: %w", name, img.ManifestDesc.Digest, errdefs.ErrInvalidArgument)
	}
	img.ConfigDesc = img.Manifest.Config
	b, err := ReadBlob(ctx, p, img.ConfigDesc, MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", name, err)
	}
	if err := json.Unmarshal(b, &img.Config); err != nil {
		return nil, fmt.Errorf("%s: config %s: %w: %w", name, img.ConfigDesc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if n, m := len(img.Config.RootFS.DiffIDs), len(img.Manifest.Layers); n != m {
		return nil, fmt.Errorf("%s: the config lists %d diff_ids for the manifest's %d layers: %w", name, n, m, errdefs.ErrInvalidArgument)
	}
	return img, nil
}

// choose picks the manifest for platform from an index: the first that matches, or the only one
// when it names no platform.
func choose(idx ocispec.Index, p Platform) (ocispec.Descriptor, error) {
	var seen []string
	for _, m := range idx.Manifests {
		if p.Matches(m.Platform) && (IsManifest(m.MediaType) || IsIndex(m.MediaType)) {
			return m, nil
		}
		if m.Platform != nil {
			seen = append(seen, Platform{m.Platform.OS, m.Platform.Architecture, m.Platform.Variant}.String())
		}
	}
	if len(idx.Manifests) == 1 && idx.Manifests[0].Platform == nil {
		return idx.Manifests[0], nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for %s in the index (it has %v): %w", p, seen, errdefs.ErrNotFound)
}

// sniffMediaType guesses a document's type from its mediaType field or its shape, for descriptors
// that do not say (some layouts' index.json entries).
func sniffMediaType(b []byte) string {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
