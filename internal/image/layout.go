package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Layout is an OCI image layout directory, read.
type Layout struct {
	Dir   string
	Index ocispec.Index
}

var _ Provider = (*Layout)(nil)

// OpenLayout reads dir's oci-layout and index.json.
func OpenLayout(dir string) (*Layout, error) {
	b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageLayoutFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not an OCI image layout (no %s): %w", dir, ocispec.ImageLayoutFile, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	var lay ocispec.ImageLayout
	if err := json.Unmarshal(b, &lay); err != nil {
		return nil, fmt.Errorf("OCI layout %s: %s: %w: %w", dir, ocispec.ImageLayoutFile, err, errdefs.ErrInvalidArgument)
	}
	if lay.Version != ocispec.ImageLayoutVersion {
		return nil, fmt.Errorf("OCI layout %s: imageLayoutVersion %q, expected %q: %w", dir, lay.Version, ocispec.ImageLayoutVersion, errdefs.ErrInvalidArgument)
	}
	l := &Layout{Dir: dir}
	b, err = os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &l.Index); err != nil {
		return nil, fmt.Errorf("OCI layout %s: index.json: %w: %w", dir, err, errdefs.ErrInvalidArgument)
	}
	return l, nil
}

// Open opens a blob of the layout.
func (l *Layout) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("digest %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	f, err := os.Open(filepath.Join(l.Dir, ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s not in the layout %s: %w", desc.Digest, l.Dir, errdefs.ErrNotFound)
	}
	return f, err
}

// Find returns the index entry named tag (annotation org.opencontainers.image.ref.name); with an
// empty tag, the only entry.
func (l *Layout) Find(tag string) (ocispec.Descriptor, error) {
	return findInIndex(l.Index, tag, "the layout "+l.Dir)
}

func findInIndex(idx ocispec.Index, tag, where string) (ocispec.Descriptor, error) {
	var names []string
	for _, m := range idx.Manifests {
		name := m.Annotations[ocispec.AnnotationRefName]
		if tag != "" && name == tag {
			return m, nil
		}
		if name != "" {
			names = append(names, name)
		}
	}
	if tag == "" {
		if len(idx.Manifests) == 1 {
			return idx.Manifests[0], nil
		}
		return ocispec.Descriptor{}, fmt.Errorf("%s holds %d images (%v): name one: %w", where, len(idx.Manifests), names, errdefs.ErrInvalidArgument)
	}
	return ocispec.Descriptor{}, fmt.Errorf("no image %q in %s (it has %v): %w", tag, where, names, errdefs.ErrNotFound)
}
