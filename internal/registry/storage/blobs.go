package storage

import (
	"context"
	"errors"
	"fmt"
	"os"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// StatBlob returns the size of a blob the repository holds, or ErrBlobUnknown.
func (s *Store) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	if err := validRepo(repo); err != nil {
		return 0, err
	}
	if err := validDigest(d); err != nil {
		return 0, err
	}
	// The blob is stat'ed too, not only the link: a collector in another process removes the
	// content before the links, and a HEAD must not promise a blob that is gone.
	var st unix.Stat_t
	if err := stat(s.blobLinkPath(repo, d), &st); err != nil {
		return 0, notExist(err, ErrBlobUnknown)
	}
	if err := stat(s.blobPath(d), &st); err != nil {
		return 0, notExist(err, ErrBlobUnknown)
	}
	return st.Size, nil
}

// OpenBlob opens a blob the repository holds for reading; the caller closes it.
func (s *Store) OpenBlob(ctx context.Context, repo string, d digest.Digest) (*os.File, int64, error) {
	if err := validRepo(repo); err != nil {
		return nil, 0, err
	}
	if err := validDigest(d); err != nil {
		return nil, 0, err
	}
	if _, err := os.Lstat(s.blobLinkPath(repo, d)); err != nil {
		return nil, 0, notExist(err, ErrBlobUnknown)
	}
	f, err := os.Open(s.blobPath(d))
	if err != nil {
		return nil, 0, notExist(err, ErrBlobUnknown)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// DeleteBlob removes a blob from a repository. The content itself stays until garbage collection
// finds no manifest that refers to it.
func (s *Store) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := validRepo(repo); err != nil {
		return err
	}
	if err := validDigest(d); err != nil {
		return err
	}
	if err := os.Remove(s.blobLinkPath(repo, d)); err != nil {
		return notExist(err, ErrBlobUnknown)
	}
	return nil
}

// MountBlob makes a blob available in repo without uploading it again. With from set, the blob
// must be in that repository; with from empty, anywhere in the registry (the caller decides
// whether the user may see content by digest alone). Returns the blob's size, or ErrBlobUnknown.
func (s *Store) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (int64, error) {
	if err := validRepo(repo); err != nil {
		return 0, err
	}
	if err := validDigest(d); err != nil {
		return 0, err
	}
	if from != "" {
		if err := validRepo(from); err != nil {
			return 0, err
		}
		if _, err := os.Lstat(s.blobLinkPath(from, d)); err != nil {
			return 0, notExist(err, ErrBlobUnknown)
		}
	}
	release, err := s.sharedGCLock(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	p := s.blobPath(d)
	if err := touch(p); err != nil {
		return 0, notExist(err, ErrBlobUnknown)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, notExist(err, ErrBlobUnknown)
	}
	if err := s.createEmpty(s.blobLinkPath(repo, d)); err != nil {
		return 0, fmt.Errorf("link blob into %s: %w", repo, err)
	}
	return fi.Size(), nil
}

// notExist turns a missing file into the given class, and passes other errors on.
func notExist(err, class error) error {
	if errors.Is(err, os.ErrNotExist) {
		return class
	}
	return err
}
