package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// GCOptions tune a collection.
type GCOptions struct {
	// DryRun reports what would go and removes nothing.
	DryRun bool
	// Grace keeps blobs and ingest files younger than this: a pull writes its blobs before it names
	// the image, and must not lose them to a collection running meanwhile (default 10 minutes).
	Grace time.Duration
	// Roots are further descriptors to keep, with what they reference (e.g. the daemon's containers).
	Roots []ocispec.Descriptor
}

// GCResult says what a collection removed (or, in a dry run, would remove).
type GCResult struct {
	Blobs       []digest.Digest
	Bytes       int64
	IngestFiles int
}

// maxWalkBlob bounds the manifests and indexes read while marking.
const maxWalkBlob = 16 << 20

// GC removes the blobs no image references (through indexes, manifests, configs, layers and
// subjects) and abandoned ingest files, both older than the grace period. It runs beside readers
// and writers: the image list is read in one transaction, and what was written after it started is
// younger than the grace period.
func (s *Store) GC(ctx context.Context, o GCOptions) (GCResult, error) {
	if o.Grace == 0 {
		o.Grace = 10 * time.Minute
	}
	start := time.Now()
	roots := append([]ocispec.Descriptor(nil), o.Roots...)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var img Image
			if err := decodeImage(v, &img); err != nil {
				return err
			}
			roots = append(roots, img.Target)
			return nil
		})
	})
	if err != nil {
		return GCResult{}, fmt.Errorf("gc: %w", err)
	}
	marked := map[digest.Digest]bool{}
	for _, r := range roots {
		if err := s.mark(ctx, r, marked); err != nil {
			return GCResult{}, fmt.Errorf("gc: %w", err)
		}
	}
	var res GCResult
	cutoff := start.Add(-o.Grace)
	err = s.Walk(ctx, func(info Info) error {
		if marked[info.Digest] || info.ModTime.After(cutoff) {
			return nil
		}
		res.Blobs = append(res.Blobs, info.Digest)
		res.Bytes += info.Size
		if o.DryRun {
			return nil
		}
		return s.Delete(ctx, info.Digest)
	})
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	ents, err := os.ReadDir(filepath.Join(s.root, "ingest"))
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		res.IngestFiles++
		if !o.DryRun {
			if err := os.Remove(filepath.Join(s.root, "ingest", e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return res, fmt.Errorf("gc: %w", err)
			}
		}
	}
	return res, nil
}

// mark marks desc and, for the image-spec documents that reference others, what it references.
// A referenced blob that is missing is not an error: a partial pull may have left it so.
func (s *Store) mark(ctx context.Context, desc ocispec.Descriptor, marked map[digest.Digest]bool) error {
	if marked[desc.Digest] || desc.Digest.Validate() != nil {
		return nil
	}
	marked[desc.Digest] = true
	var children []ocispec.Descriptor
	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		var idx ocispec.Index
		if err := s.readJSON(ctx, desc, &idx); err != nil {
			return err
		}
		children = idx.Manifests
		if idx.Subject != nil {
			children = append(children, *idx.Subject)
		}
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		var m ocispec.Manifest
		if err := s.readJSON(ctx, desc, &m); err != nil {
			return err
		}
		children = append(append(children, m.Config), m.Layers...)
		if m.Subject != nil {
			children = append(children, *m.Subject)
		}
	default:
		return nil
	}
	for _, c := range children {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.mark(ctx, c, marked); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) readJSON(ctx context.Context, desc ocispec.Descriptor, v any) error {
	b, err := s.ReadBlob(ctx, desc, maxWalkBlob)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: %w", desc.MediaType, desc.Digest, err)
	}
	return nil
}

// Docker's media types, which the store walks like their OCI twins.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)
