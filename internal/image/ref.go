package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// Transports, spelled as skopeo spells them.
const (
	TransportStore         = ""
	TransportOCI           = "oci"
	TransportOCIArchive    = "oci-archive"
	TransportDockerArchive = "docker-archive"
	TransportDocker        = "docker"
)

// Ref names an image: in the local store (Transport ""), in an OCI layout directory
// ("oci:DIR[:TAG]"), in an archive ("oci-archive:FILE[:TAG]", "docker-archive:FILE[:NAME:TAG]") or
// in a registry ("docker://HOST/NAME:TAG").
type Ref struct {
	Transport string
	Path      string // the directory or file
	Name      string // the tag in a layout, the RepoTag in a docker-archive, the store or registry name
}

func (r Ref) String() string {
	switch r.Transport {
	case TransportStore:
		return r.Name
	case TransportDocker:
		return "docker://" + r.Name
	}
	if r.Name == "" {
		return r.Transport + ":" + r.Path
	}
	return r.Transport + ":" + r.Path + ":" + r.Name
}

// ParseRef parses s. A path cannot contain ':' (skopeo's rule too: the first ':' after the
// transport ends the path).
func ParseRef(s string) (Ref, error) {
	if rest, ok := strings.CutPrefix(s, "docker://"); ok {
		return Ref{Transport: TransportDocker, Name: rest}, nil
	}
	for _, t := range []string{TransportOCI, TransportOCIArchive, TransportDockerArchive} {
		rest, ok := strings.CutPrefix(s, t+":")
		if !ok {
			continue
		}
		p, name, _ := strings.Cut(rest, ":")
		if p == "" {
			return Ref{}, fmt.Errorf("image %q: no path after %q: %w", s, t+":", errdefs.ErrInvalidArgument)
		}
		return Ref{Transport: t, Path: p, Name: name}, nil
	}
	name, err := NormalizeName(s)
	if err != nil {
		return Ref{}, err
	}
	return Ref{Name: name}, nil
}

// NormalizeName checks a local image name ([HOST/]NAME[:TAG][@DIGEST]) and adds ":latest" when it
// has neither tag nor digest.
func NormalizeName(s string) (string, error) {
	img, err := reference.ParseImage(s, "localhost")
	if err != nil {
		return "", fmt.Errorf("image name %q: %w: %w", s, err, errdefs.ErrInvalidArgument)
	}
	if img.Digest != "" {
		return s, nil
	}
	// ParseImage fills in the default tag: add it to the name only if the name had none.
	if c := strings.LastIndexByte(s, ':'); c < 0 || c < strings.LastIndexByte(s, '/') {
		s += ":" + img.Tag
	}
	return s, nil
}

// Source is an opened Ref: a provider of blobs and the descriptor the ref names. Close releases it.
type Source struct {
	Provider
	Target ocispec.Descriptor
	close  func() error
}

// Close releases the source's files.
func (s *Source) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

// Open opens a ref that is on this machine (store, layout or archive); store may be nil when the
// ref does not name a store image.
func Open(ctx context.Context, r Ref, store *content.Store) (*Source, error) {
	switch r.Transport {
	case TransportOCI:
		l, err := OpenLayout(r.Path)
		return find(l, err, r.Name, nil)
	case TransportOCIArchive:
		a, err := OpenOCIArchive(r.Path)
		if err != nil {
			return nil, err
		}
		return find(a, nil, r.Name, a.Close)
	case TransportDockerArchive:
		a, err := OpenDockerArchive(r.Path)
		if err != nil {
			return nil, err
		}
		return find(a, nil, r.Name, a.Close)
	case TransportStore:
		if store == nil {
			return nil, errors.New("no content store")
		}
		img, err := store.Image(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		return &Source{Provider: StoreProvider{store}, Target: img.Target}, nil
	}
	return nil, fmt.Errorf("image %s: the %q transport is remote: pull it first: %w", r, r.Transport, errdefs.ErrInvalidArgument)
}

// finder is a layout or an archive: blobs, and names in its index.
type finder interface {
	Provider
	Find(name string) (ocispec.Descriptor, error)
}

// find opens name in f (just opened, with err), releasing f with closeFn if that fails.
func find(f finder, err error, name string, closeFn func() error) (*Source, error) {
	if err != nil {
		return nil, err
	}
	d, err := f.Find(name)
	if err != nil {
		if closeFn != nil {
			closeFn()
		}
		return nil, err
	}
	return &Source{Provider: f, Target: d, close: closeFn}, nil
}

// StoreProvider reads blobs from the content store.
type StoreProvider struct{ Store *content.Store }

var _ Provider = StoreProvider{}

// Open opens a blob of the store.
func (p StoreProvider) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return p.Store.Open(ctx, desc)
}
