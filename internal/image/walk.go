package image

import (
	"context"
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Children returns what an index or manifest references (nil for other blobs), reading it from p.
func Children(ctx context.Context, p Provider, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	switch {
	case IsIndex(desc.MediaType):
		b, err := ReadBlob(ctx, p, desc, MaxManifestSize)
		if err != nil {
			return nil, err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("index %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
		}
		return idx.Manifests, nil
	case IsManifest(desc.MediaType):
		b, err := ReadBlob(ctx, p, desc, MaxManifestSize)
		if err != nil {
			return nil, err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
		}
		return append([]ocispec.Descriptor{m.Config}, m.Layers...), nil
	}
	return nil, nil
}

// Walk calls fn for desc and everything it references, each blob once, parents before children.
func Walk(ctx context.Context, p Provider, desc ocispec.Descriptor, fn func(ocispec.Descriptor) error) error {
	seen := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor, depth int) error
	walk = func(d ocispec.Descriptor, depth int) error {
		if seen[d.Digest] {
			return nil
		}
		if depth > 8 {
			return fmt.Errorf("%s: references nested more than 8 deep: %w", d.Digest, errdefs.ErrInvalidArgument)
		}
		seen[d.Digest] = true
		if err := fn(d); err != nil {
			return err
		}
		kids, err := Children(ctx, p, d)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(k, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(desc, 0)
}

// CopyToStore copies desc and everything it references from p into the store, verifying each
// blob's digest; blobs already there are not read again. Nothing is named: the caller does that
// once the copy is whole.
func CopyToStore(ctx context.Context, p Provider, desc ocispec.Descriptor, store *content.Store) error {
	return Walk(ctx, p, desc, func(d ocispec.Descriptor) error {
		if ok, err := store.Has(ctx, d); err != nil || ok {
			return err
		}
		rc, err := p.Open(ctx, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := store.Ingest(ctx, d, rc); err != nil {
			return fmt.Errorf("copy %s: %w", d.Digest, err)
		}
		return nil
	})
}
