package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

var bucketImages = []byte("images")

// Image is a name in the store and the manifest or index it points at.
type Image struct {
	Name    string             `json:"name"`
	Target  ocispec.Descriptor `json:"target"`
	Created time.Time          `json:"created"`
	Updated time.Time          `json:"updated"`
}

// PutImage names img.Target img.Name, replacing what the name pointed at (Created is kept).
// The target's blob must be in the store.
func (s *Store) PutImage(ctx context.Context, img Image) error {
	if img.Name == "" {
		return fmt.Errorf("image name: empty: %w", errdefs.ErrInvalidArgument)
	}
	if ok, err := s.Has(ctx, img.Target); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("image %s: its target %s is not in the store: %w", img.Name, img.Target.Digest, errdefs.ErrFailedPrecondition)
	}
	now := time.Now().UTC()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		img.Created, img.Updated = now, now
		if old := b.Get([]byte(img.Name)); old != nil {
			var prev Image
			if json.Unmarshal(old, &prev) == nil && !prev.Created.IsZero() {
				img.Created = prev.Created
			}
		}
		v, err := json.Marshal(img)
		if err != nil {
			return err
		}
		return b.Put([]byte(img.Name), v)
	})
}

// Image returns the image called name; errdefs.ErrNotFound if there is none.
func (s *Store) Image(ctx context.Context, name string) (Image, error) {
	var img Image
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketImages).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
		}
		return decodeImage(v, &img)
	})
	return img, err
}

// Images lists the images, sorted by name.
func (s *Store) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var img Image
			if err := decodeImage(v, &img); err != nil {
				return err
			}
			out = append(out, img)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// DeleteImage removes the name (not its content: garbage collection does that); errdefs.ErrNotFound
// if there is no such image.
func (s *Store) DeleteImage(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
}

func decodeImage(v []byte, img *Image) error {
	if err := json.Unmarshal(v, img); err != nil {
		return fmt.Errorf("image record: %w", errors.Join(err, errdefs.ErrFailedPrecondition))
	}
	return nil
}
