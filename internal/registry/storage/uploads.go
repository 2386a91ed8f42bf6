package storage

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// An upload lives in uploads/<id>/: "info" names its repository, "data" holds the bytes received.
// Writers serialise on an exclusive flock of "data"; garbage collection skips uploads whose lock is
// held and removes those untouched for longer than the upload TTL.

type uploadInfo struct {
	Repo    string    `json:"repo"`
	Started time.Time `json:"started"`
}

// uploadHash is the running sha256 of an upload, valid while off equals the data's size.
type uploadHash struct {
	h    hash.Hash
	off  int64
	used time.Time
}

const (
	// copyBuffer is the unit an upload is received and hashed in: reading the socket in large
	// pieces costs fewer wake-ups.
	copyBuffer = 1 << 20
	// writeChunk is the unit it is written in. Not larger: since Linux 6.16, ext4 sizes page-cache
	// folios by the write, and on these VMs 1 MiB writes (order-8 folios) cost up to four times the
	// CPU of 128 KiB ones once the easily found free memory is used (1.1 s against 0.3 s per 256 MiB;
	// 256 KiB already degrades at times, 64 KiB costs more write calls, each updating the inode).
	writeChunk = 128 << 10
	// writebackEvery bytes written, the kernel is asked to start writing them back.
	writebackEvery = 8 << 20
	hashIdle       = time.Hour
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBuffer); return &b }}

func validUploadID(id string) error {
	if len(id) != 32 {
		return fmt.Errorf("%w: upload id", ErrUploadUnknown)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: upload id", ErrUploadUnknown)
		}
	}
	return nil
}

func (s *Store) uploadDir(id string) string { return filepath.Join(s.root, "uploads", id) }

// NewUpload starts an upload into repo and returns its id.
func (s *Store) NewUpload(ctx context.Context, repo string) (string, error) {
	if err := validRepo(repo); err != nil {
		return "", err
	}
	s.sweepHashes()
	id := randomID()
	// Built in the temporary directory and renamed into uploads/, so that an upload is never seen
	// without its info.
	tmp := filepath.Join(s.tmp, "u-"+id)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", err
	}
	info, _ := json.Marshal(uploadInfo{Repo: repo, Started: time.Now().UTC()})
	if err := os.WriteFile(filepath.Join(tmp, "info"), info, 0o600); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	f, err := os.OpenFile(filepath.Join(tmp, "data"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	f.Close()
	if err := os.Rename(tmp, s.uploadDir(id)); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return id, nil
}

// openUpload opens an upload's data with its lock held, after checking it belongs to repo.
func (s *Store) openUpload(ctx context.Context, repo, id string) (*os.File, int64, error) {
	if err := validRepo(repo); err != nil {
		return nil, 0, err
	}
	if err := validUploadID(id); err != nil {
		return nil, 0, err
	}
	dir := s.uploadDir(id)
	b, err := os.ReadFile(filepath.Join(dir, "info"))
	if err != nil {
		return nil, 0, notExist(err, ErrUploadUnknown)
	}
	var info uploadInfo
	if json.Unmarshal(b, &info) != nil || info.Repo != repo {
		return nil, 0, ErrUploadUnknown
	}
	path := filepath.Join(dir, "data")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, notExist(err, ErrUploadUnknown)
	}
	// Clients do not write one upload from two connections at once; wait briefly, then say busy.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := flock(f, lockEX|lockNB)
		if err == nil {
			break
		}
		if !isWouldBlock(err) || time.Now().After(deadline) {
			f.Close()
			if isWouldBlock(err) {
				return nil, 0, ErrUploadBusy
			}
			return nil, 0, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	// It may have been committed or removed while we waited for the lock.
	if ok, err := sameFile(f, path); err != nil || !ok {
		f.Close()
		if err != nil {
			return nil, 0, err
		}
		return nil, 0, ErrUploadUnknown
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// UploadStatus returns how many bytes an upload holds.
func (s *Store) UploadStatus(ctx context.Context, repo, id string) (int64, error) {
	if err := validRepo(repo); err != nil {
		return 0, err
	}
	if err := validUploadID(id); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(s.uploadDir(id), "info"))
	if err != nil {
		return 0, notExist(err, ErrUploadUnknown)
	}
	var info uploadInfo
	if json.Unmarshal(b, &info) != nil || info.Repo != repo {
		return 0, ErrUploadUnknown
	}
	fi, err := os.Stat(filepath.Join(s.uploadDir(id), "data"))
	if err != nil {
		return 0, notExist(err, ErrUploadUnknown)
	}
	return fi.Size(), nil
}

// WriteUpload appends a chunk to an upload. start is where the client says the chunk begins (-1
// for a streamed chunk, which goes at the end); a mismatch is a *RangeError and changes nothing.
// length is the chunk's declared size (-1 when unknown); a body that ends early leaves the upload
// as it was. Returns the upload's new size.
func (s *Store) WriteUpload(ctx context.Context, repo, id string, start, length int64, r io.Reader) (int64, error) {
	f, size, err := s.openUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if start >= 0 && start != size {
		return size, &RangeError{Offset: size}
	}
	return s.appendLocked(ctx, id, f, size, length, r)
}

func (s *Store) appendLocked(ctx context.Context, id string, f *os.File, size, length int64, r io.Reader) (int64, error) {
	uh := s.takeHash(id, size)
	if length >= 0 {
		r = io.LimitReader(r, length)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	off := size
	lastWB := size
	var werr error
	for {
		if err := ctx.Err(); err != nil {
			werr = err
			break
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := writeAtChunked(f, buf[:n], off); err != nil {
				werr = fmt.Errorf("write upload: %w", err)
				break
			}
			if uh != nil {
				uh.h.Write(buf[:n])
			}
			off += int64(n)
			if off-lastWB >= writebackEvery {
				startWriteback(f, lastWB, off-lastWB)
				lastWB = off
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			werr = fmt.Errorf("read chunk: %w", rerr)
			break
		}
	}
	if werr == nil && length >= 0 && off-size != length {
		werr = fmt.Errorf("chunk ended after %d of %d bytes: %w", off-size, length, io.ErrUnexpectedEOF)
	}
	if werr != nil {
		// The chunk is all or nothing: cut back to where it started.
		if err := f.Truncate(size); err != nil {
			return size, errors.Join(werr, err)
		}
		if uh != nil {
			s.dropHash(id)
		}
		return size, werr
	}
	if uh != nil {
		uh.off = off
		s.putHash(id, uh)
	}
	return off, nil
}

// writeAtChunked writes p at off in pieces of writeChunk (see there).
func writeAtChunked(f *os.File, p []byte, off int64) error {
	for len(p) > 0 {
		n := min(len(p), writeChunk)
		if _, err := f.WriteAt(p[:n], off); err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// takeHash returns the running hash of an upload at offset off, or nil when it must be rehashed at
// commit. A fresh upload (off 0) starts one.
func (s *Store) takeHash(id string, off int64) *uploadHash {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	uh := s.hashes[id]
	delete(s.hashes, id)
	if uh != nil && uh.off == off {
		return uh
	}
	if off == 0 {
		return &uploadHash{h: sha256.New()}
	}
	return nil
}

func (s *Store) putHash(id string, uh *uploadHash) {
	uh.used = time.Now()
	s.hmu.Lock()
	s.hashes[id] = uh
	s.hmu.Unlock()
}

func (s *Store) dropHash(id string) {
	s.hmu.Lock()
	delete(s.hashes, id)
	s.hmu.Unlock()
}

// sweepHashes forgets the running hashes of uploads idle for long (abandoned, or taken over by
// another process): a commit then rehashes from disk.
func (s *Store) sweepHashes() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	now := time.Now()
	if now.Sub(s.lastSweep) < time.Minute {
		return
	}
	s.lastSweep = now
	for id, uh := range s.hashes {
		if now.Sub(uh.used) > hashIdle {
			delete(s.hashes, id)
		}
	}
}

// CommitUpload verifies that the upload (after appending the optional final chunk, which must
// start at the upload's end when start >= 0) has digest d and makes it a blob of repo. A mismatch
// is ErrDigestInvalid and removes the upload. Returns the blob's size.
func (s *Store) CommitUpload(ctx context.Context, repo, id string, d digest.Digest, start, length int64, final io.Reader) (int64, error) {
	if err := validDigest(d); err != nil {
		return 0, err
	}
	f, size, err := s.openUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if final != nil && length != 0 {
		if start >= 0 && start != size {
			return size, &RangeError{Offset: size}
		}
		if size, err = s.appendLocked(ctx, id, f, size, length, final); err != nil {
			return size, err
		}
	}
	got, err := s.digestOf(ctx, id, f, size, d.Algorithm())
	if err != nil {
		return 0, err
	}
	dir := s.uploadDir(id)
	if got != d {
		s.dropHash(id)
		os.RemoveAll(dir)
		return 0, fmt.Errorf("%w: content is %s", ErrDigestInvalid, got)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync upload: %w", err)
	}
	if err := s.linkBlob(ctx, repo, d, filepath.Join(dir, "data")); err != nil {
		return 0, err
	}
	s.dropHash(id)
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	return size, nil
}

// digestOf is the digest of an upload's data: from the running hash when it covers all of it and
// the algorithm matches, else by reading the data back.
func (s *Store) digestOf(ctx context.Context, id string, f *os.File, size int64, alg digest.Algorithm) (digest.Digest, error) {
	if alg == digest.SHA256 {
		if uh := s.takeHash(id, size); uh != nil && uh.off == size {
			sum := digest.NewDigest(alg, uh.h) // Sum does not change the state: keep it for a retry
			s.putHash(id, uh)
			return sum, nil
		}
	}
	dg := alg.Digester()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	r := io.NewSectionReader(f, 0, size)
	if _, err := io.CopyBuffer(dg.Hash(), readerCtx{ctx, r}, *bp); err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	return dg.Digest(), nil
}

type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// linkBlob moves verified, synced content at src to the blob store (or drops it when the blob is
// already there) and links it into repo, under the shared GC lock.
func (s *Store) linkBlob(ctx context.Context, repo string, d digest.Digest, src string) error {
	release, err := s.sharedGCLock(ctx)
	if err != nil {
		return err
	}
	defer release()
	dst := s.blobPath(d)
	blobDir := filepath.Dir(dst)
	if err := s.ensureDir(blobDir); err != nil {
		return err
	}
	renamed := false
	switch err := renameNoReplace(src, dst); {
	case err == nil:
		renamed = true
	case errors.Is(err, os.ErrExist):
		// Pushed concurrently, or before: same content. Mark it used now, for the collector.
		if err := touch(dst); err != nil {
			return err
		}
		os.Remove(src)
	default:
		return fmt.Errorf("store blob: %w", err)
	}
	// Both entries are made before either directory is synced: on a journaling filesystem (ext4,
	// XFS) the first sync commits both, which saves a commit per blob, and each directory is still
	// synced before the blob is acknowledged. Should the link reach the disk without the blob (a
	// filesystem that does not order them), the link is harmless: reads check the blob too, and
	// the collector removes links to missing blobs.
	link := s.blobLinkPath(repo, d)
	created, err := s.createEmptyNoSync(link)
	if err != nil {
		return fmt.Errorf("link blob into %s: %w", repo, err)
	}
	if renamed {
		if err := fsyncDir(blobDir); err != nil {
			return err
		}
	}
	if created {
		if err := fsyncDir(filepath.Dir(link)); err != nil {
			return fmt.Errorf("link blob into %s: %w", repo, err)
		}
	}
	return nil
}

// CancelUpload removes an upload.
func (s *Store) CancelUpload(ctx context.Context, repo, id string) error {
	f, _, err := s.openUpload(ctx, repo, id)
	if err != nil {
		return err
	}
	defer f.Close()
	s.dropHash(id)
	return os.RemoveAll(s.uploadDir(id))
}

// PutBlob stores content of a known digest in one step (a monolithic upload).
func (s *Store) PutBlob(ctx context.Context, repo string, d digest.Digest, length int64, r io.Reader) (int64, error) {
	if err := validDigest(d); err != nil {
		return 0, err
	}
	id, err := s.NewUpload(ctx, repo)
	if err != nil {
		return 0, err
	}
	n, err := s.CommitUpload(ctx, repo, id, d, 0, length, r)
	if err != nil {
		os.RemoveAll(s.uploadDir(id))
		s.dropHash(id)
	}
	return n, err
}
