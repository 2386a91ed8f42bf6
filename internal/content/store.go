package content

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Config says where a Store lives.
type Config struct {
	// Root holds blobs/, ingest/ and meta.db; it is created if missing.
	Root string
	// LockTimeout bounds the wait for another process holding the database (default 10 s).
	LockTimeout time.Duration
}

// Store is a content store. Its methods are safe for concurrent use.
type Store struct {
	root string
	db   *bolt.DB
}

// Info describes a blob in the store.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// Open opens (creating if need be) the store at cfg.Root.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("content store: no root directory: %w", errdefs.ErrInvalidArgument)
	}
	for _, d := range []string{"blobs", "ingest"} {
		if err := os.MkdirAll(filepath.Join(cfg.Root, d), 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	timeout := cfg.LockTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	dbPath := filepath.Join(cfg.Root, "meta.db")
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("content store %s: another process holds its database (waited %s): %w", cfg.Root, timeout, errdefs.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("content store: open %s: %w", dbPath, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketImages)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("content store: %w", err)
	}
	return &Store{root: cfg.Root, db: db}, nil
}

// Close releases the database.
func (s *Store) Close() error { return s.db.Close() }

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

// BlobPath is where the blob with digest d lives (whether or not it is there).
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %w: %w", d, err, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

// Info describes the blob d; errdefs.ErrNotFound if it is not in the store.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Has reports whether the blob of desc is in the store with desc's size.
func (s *Store) Has(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	info, err := s.Info(ctx, desc.Digest)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Size == desc.Size, nil
}

// Open opens the blob of desc for reading (an *os.File: it is also an io.ReaderAt and seekable).
func (s *Store) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return s.OpenFile(desc.Digest)
}

// OpenFile opens the blob d.
func (s *Store) OpenFile(d digest.Digest) (*os.File, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// ReadBlob reads a whole blob of at most max bytes (manifests, configs).
func (s *Store) ReadBlob(ctx context.Context, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max {
		return nil, fmt.Errorf("blob %s: %d bytes, more than the %d allowed here: %w", desc.Digest, desc.Size, max, errdefs.ErrInvalidArgument)
	}
	f, err := s.OpenFile(desc.Digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("blob %s: %d bytes in the store, the descriptor says %d: %w", desc.Digest, len(b), desc.Size, errdefs.ErrFailedPrecondition)
	}
	return b, nil
}

// Ingest writes r as the blob desc describes, checking its size and digest: a mismatch is an
// errdefs.ErrInvalidArgument and leaves nothing. It is not an error if the blob is already there
// (r is then not read). The blob appears whole or not at all.
func (s *Store) Ingest(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("ingest: digest %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if ok, err := s.Has(ctx, desc); err != nil || ok {
		return err
	}
	_, err := s.write(ctx, desc.Digest.Algorithm(), desc.Digest, desc.Size, r)
	return err
}

// Write stores r, of unknown digest, hashed with alg, and returns its descriptor (media type unset).
func (s *Store) Write(ctx context.Context, alg digest.Algorithm, r io.Reader) (ocispec.Descriptor, error) {
	if !alg.Available() {
		return ocispec.Descriptor{}, fmt.Errorf("ingest: digest algorithm %q: %w", alg, errdefs.ErrInvalidArgument)
	}
	return s.write(ctx, alg, "", -1, r)
}

// WriteBytes stores b and returns its sha256 descriptor with mediaType.
func (s *Store) WriteBytes(ctx context.Context, mediaType string, b []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return desc, s.Ingest(ctx, desc, bytes.NewReader(b))
}

func (s *Store) write(ctx context.Context, alg digest.Algorithm, want digest.Digest, size int64, r io.Reader) (ocispec.Descriptor, error) {
	tmp, err := s.tempFile()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := alg.Hash()
	src := r
	if size >= 0 {
		// One byte more than promised is enough to tell that the data is too long.
		src = io.LimitReader(r, size+1)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, src})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: %w", nameOr(want), err)
	}
	if size >= 0 && n != size {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: %d bytes, the descriptor says %d: %w", want, n, size, errdefs.ErrInvalidArgument)
	}
	got := digest.NewDigest(alg, h)
	if want != "" && got != want {
		return ocispec.Descriptor{}, fmt.Errorf("ingest: the data's digest is %s, the descriptor says %s: %w", got, want, errdefs.ErrInvalidArgument)
	}
	if err := tmp.Sync(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: fsync: %w", got, err)
	}
	if err := tmp.Close(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: %w", got, err)
	}
	dst, _ := s.BlobPath(got)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: %w", got, err)
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: %w", got, err)
	}
	// Same content, same name: a concurrent writer of the same blob renames an identical file over it.
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: %w", got, err)
	}
	committed = true
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: %w", got, err)
	}
	return ocispec.Descriptor{Digest: got, Size: n}, nil
}

func nameOr(d digest.Digest) string {
	if d == "" {
		return "blob"
	}
	return d.String()
}

func (s *Store) tempFile() (*os.File, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	p := filepath.Join(s.root, "ingest", hex.EncodeToString(b[:]))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return f, nil
}

// Delete removes the blob d; it is not an error if it is not there.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.BlobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every blob in the store.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	algs, err := os.ReadDir(filepath.Join(s.root, "blobs"))
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, a := range algs {
		alg := digest.Algorithm(a.Name())
		ents, err := os.ReadDir(filepath.Join(s.root, "blobs", a.Name()))
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := digest.NewDigestFromEncoded(alg, e.Name())
			if d.Validate() != nil {
				continue // not ours
			}
			fi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			if err := fn(Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
