package storage

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// What the read paths need, kept in memory so that a manifest GET costs a stat or two instead of
// opening and reading three files:
//
//   - small files that are only ever replaced whole, by rename (tags, manifest links), keyed by
//     path and trusted while the file's identity (inode, change time, size) is what it was when it
//     was read: one stat(2) per request notices a write by anyone, another process included. A
//     file is cached only once its change time is cacheSettle old: the kernel stamps times from a
//     coarse clock, so a file replaced twice within one tick could come back with the inode number
//     of the first (freed, then reused) and the same time and size; a version written after the
//     read carries a later time than a settled one.
//   - manifest content by digest, which cannot change (the digest is of the bytes). It is served
//     only after the repository's link has been seen to exist, so a deleted manifest is not served.
//
// Both are bounded; when full, arbitrary entries go (Go's map iteration order), which costs a
// re-read at worst.

// fileID identifies one version of a file written by rename: a rewrite is a new inode, and the
// change time (nanoseconds) tells a reused inode number apart.
type fileID struct {
	ino, ctimeSec, ctimeNsec, size int64
}

func idOf(st *unix.Stat_t) fileID {
	return fileID{ino: int64(st.Ino), ctimeSec: st.Ctim.Sec, ctimeNsec: st.Ctim.Nsec, size: st.Size}
}

// stat is os.Stat without the FileInfo allocation; a missing file is os.ErrNotExist.
func stat(path string, st *unix.Stat_t) error {
	for {
		err := unix.Stat(path, st)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
			return os.ErrNotExist
		}
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
}

// cacheSettle is how old a file's change time must be for its content to be cached (a variable
// for tests).
var cacheSettle = time.Second

const (
	smallFileMax     = 4 << 10  // a tag holds a digest, a link a media type
	pathCacheEntries = 1 << 14  // about 4 MiB at most
	manifestCacheMax = 16 << 20 // bytes of manifest content kept
	manifestEntryMax = 1 << 20  // larger manifests are read each time
)

type smallFile struct {
	id   fileID
	data string
}

// smallFiles caches the content of small files replaced by rename.
type smallFiles struct {
	mu sync.RWMutex
	m  map[string]smallFile
}

// read returns the content of path: from the cache when the file is the one read last time, else
// from disk. A missing file is os.ErrNotExist.
func (c *smallFiles) read(path string) (string, error) {
	var st unix.Stat_t
	if err := stat(path, &st); err != nil {
		return "", err
	}
	id := idOf(&st)
	c.mu.RLock()
	e, ok := c.m[path]
	c.mu.RUnlock()
	if ok && e.id == id {
		return e.data, nil
	}
	// Read through one descriptor, and take the identity from it, so that content and identity
	// belong to the same version even if the file is replaced meanwhile.
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Size > smallFileMax {
		b, err := io.ReadAll(f)
		return string(b), err
	}
	b, err := io.ReadAll(io.LimitReader(f, smallFileMax+1))
	if err != nil {
		return "", err
	}
	data := string(b)
	if time.Since(time.Unix(st.Ctim.Sec, st.Ctim.Nsec)) < cacheSettle {
		return data, nil
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]smallFile{}
	}
	if len(c.m) >= pathCacheEntries {
		evict(c.m, pathCacheEntries/8)
	}
	c.m[path] = smallFile{id: idOf(&st), data: data}
	c.mu.Unlock()
	return data, nil
}

// manifests caches manifest content by digest.
type manifests struct {
	mu    sync.RWMutex
	m     map[string][]byte
	bytes int
}

func (c *manifests) get(d string) []byte {
	c.mu.RLock()
	b := c.m[d]
	c.mu.RUnlock()
	return b
}

func (c *manifests) put(d string, b []byte) {
	if len(b) > manifestEntryMax || len(b) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	if _, ok := c.m[d]; ok {
		return
	}
	for k, v := range c.m {
		if c.bytes+len(b) <= manifestCacheMax {
			break
		}
		delete(c.m, k)
		c.bytes -= len(v)
	}
	c.m[d] = b
	c.bytes += len(b)
}

func evict[V any](m map[string]V, n int) {
	for k := range m {
		if n <= 0 {
			return
		}
		delete(m, k)
		n--
	}
}
