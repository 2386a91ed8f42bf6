package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/registry/reference"
)

// Errors, for errors.Is; the server maps each to a distribution-spec error code.
var (
	ErrBlobUnknown     = errors.New("blob unknown to registry")
	ErrUploadUnknown   = errors.New("blob upload unknown to registry")
	ErrManifestUnknown = errors.New("manifest unknown")
	ErrNameUnknown     = errors.New("repository name not known to registry")
	// ErrDigestInvalid: the content does not match the digest it was sent with.
	ErrDigestInvalid = errors.New("provided digest did not match uploaded content")
	// ErrInvalid: a malformed argument (name, tag, digest, upload id).
	ErrInvalid = errors.New("invalid argument")
	// ErrManifestInvalid: a manifest that refers to content of the wrong size, and the like.
	ErrManifestInvalid = errors.New("manifest invalid")
	// ErrUploadBusy: another request is writing to the same upload.
	ErrUploadBusy = errors.New("upload is being written by another request")
)

// RangeError is returned when a chunk does not start where the upload ends. The upload is
// unchanged and still usable from Offset.
type RangeError struct{ Offset int64 }

func (e *RangeError) Error() string {
	return fmt.Sprintf("chunk does not start at the upload's offset %d", e.Offset)
}

// ManifestBlobUnknownError names the first blob or manifest a manifest refers to that the
// repository does not have.
type ManifestBlobUnknownError struct{ Digest digest.Digest }

func (e *ManifestBlobUnknownError) Error() string {
	return "manifest references unknown blob or manifest " + e.Digest.String()
}

// Config configures a Store.
type Config struct {
	// Root is the directory holding everything; it is created if missing.
	Root string
}

// Store is a registry's storage. Its methods are safe for concurrent use, including by other
// processes on the same root (other servers, `berth registry gc`).
type Store struct {
	root string
	tmp  string   // this process's temporary directory, below root/tmp
	tmpf *os.File // holds the flock that marks tmp as alive

	// dirs remembers directories known to exist, to skip a stat per write.
	dirs sync.Map
	// small and mcache spare the read paths most of their file reads (cache.go).
	small  smallFiles
	mcache manifests

	// hashes keeps the running sha256 of each upload written by this process, so that a commit
	// does not read the data back (a restart or another process's write just means a rehash).
	hmu       sync.Mutex
	hashes    map[string]*uploadHash
	lastSweep time.Time
}

const layoutVersion = 1

type layoutFile struct {
	Version int `json:"version"`
}

// Open opens (creating on first use) the store at cfg.Root, and removes what crashed processes
// left behind: their temporary files.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("%w: storage root not set", ErrInvalid)
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create storage root: %w", err)
	}
	s := &Store{root: root, hashes: map[string]*uploadHash{}}
	for _, d := range []string{"blobs", "repos", "uploads", "tmp"} {
		if err := mkdirAllSync(root, filepath.Join(root, d)); err != nil {
			return nil, fmt.Errorf("create storage layout: %w", err)
		}
	}
	for _, f := range []string{"gc.lock", "gc.run", "gc.epoch"} {
		fd, err := os.OpenFile(filepath.Join(root, f), os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", f, err)
		}
		fd.Close()
	}
	if n := s.cleanTmp(ctx); n > 0 {
		slog.InfoContext(ctx, "removed temporary files of a crashed registry process", "dirs", n)
	}
	if err := s.makeTmp(); err != nil {
		return nil, err
	}
	if err := s.checkLayout(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the store's temporary directory.
func (s *Store) Close() error {
	if s.tmpf == nil {
		return nil
	}
	err := os.RemoveAll(s.tmp)
	s.tmpf.Close()
	s.tmpf = nil
	return err
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) checkLayout() error {
	p := filepath.Join(s.root, "layout")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		b, _ = json.Marshal(layoutFile{Version: layoutVersion})
		return s.writeAtomicIn(s.tmp, p, b)
	}
	if err != nil {
		return err
	}
	var l layoutFile
	if err := json.Unmarshal(b, &l); err != nil || l.Version != layoutVersion {
		return fmt.Errorf("%s: not a berth registry layout version %d (%q)", p, layoutVersion, strings.TrimSpace(string(b)))
	}
	return nil
}

// makeTmp creates this process's temporary directory and holds an exclusive flock on it for the
// process's life: cleanTmp removes only directories whose lock is free (their owner is gone).
func (s *Store) makeTmp() error {
	for range 3 {
		dir := filepath.Join(s.root, "tmp", randomID())
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("create temporary directory: %w", err)
		}
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		if err := flock(f, lockEX|lockNB); err != nil {
			f.Close()
			continue
		}
		// A cleanTmp of another process may have removed it between mkdir and flock.
		if ok, _ := sameFile(f, dir); !ok {
			f.Close()
			continue
		}
		s.tmp, s.tmpf = dir, f
		return nil
	}
	return errors.New("could not create a temporary directory below the storage root")
}

// cleanTmp removes the temporary directories of processes that are gone.
func (s *Store) cleanTmp(ctx context.Context) int {
	base := filepath.Join(s.root, "tmp")
	ents, err := os.ReadDir(base)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		p := filepath.Join(base, e.Name())
		if !e.IsDir() {
			os.Remove(p)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if flock(f, lockEX|lockNB) == nil {
			if err := os.RemoveAll(p); err != nil {
				slog.WarnContext(ctx, "remove stale temporary directory", "path", p, "err", err)
			} else {
				n++
			}
		}
		f.Close()
	}
	return n
}

func randomID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// ---- paths. Every name, tag and digest is validated before it becomes a path, so the parts are
// clean (no "..", "." or empty components) and are joined without filepath.Join's Clean, which
// showed in the profile of the read paths. The algorithm and encoded parts come from the digest
// string directly: Algorithm and Encoded each search it again.

func splitDigest(d digest.Digest) (alg, enc string) {
	s := string(d)
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}

func (s *Store) blobPath(d digest.Digest) string {
	alg, enc := splitDigest(d)
	return s.root + "/blobs/" + alg + "/" + enc[:2] + "/" + enc
}

func (s *Store) repoPath(repo string) string { return s.root + "/repos/" + repo }

func (s *Store) blobLinkPath(repo string, d digest.Digest) string {
	alg, enc := splitDigest(d)
	return s.root + "/repos/" + repo + "/_blobs/" + alg + "/" + enc
}

func (s *Store) manifestLinkPath(repo string, d digest.Digest) string {
	alg, enc := splitDigest(d)
	return s.root + "/repos/" + repo + "/_manifests/" + alg + "/" + enc
}

func (s *Store) tagPath(repo, tag string) string {
	return s.root + "/repos/" + repo + "/_tags/" + tag
}

func (s *Store) referrersDir(repo string, subject digest.Digest) string {
	return filepath.Join(s.root, "repos", repo, "_referrers", string(subject.Algorithm()), subject.Encoded())
}

func referrerName(d digest.Digest) string { return string(d.Algorithm()) + "-" + d.Encoded() }

func validRepo(repo string) error {
	if err := reference.ValidateName(repo); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func validDigest(d digest.Digest) error {
	if _, err := reference.ParseDigest(string(d)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ---- atomic writes

// ensureDir creates dir (and parents) durably, remembering it.
func (s *Store) ensureDir(dir string) error {
	if _, ok := s.dirs.Load(dir); ok {
		return nil
	}
	if err := mkdirAllSync(s.root, dir); err != nil {
		return err
	}
	s.dirs.Store(dir, struct{}{})
	return nil
}

// writeAtomic replaces path with data: temporary file, fsync, rename, fsync of the directory.
func (s *Store) writeAtomic(path string, data []byte) error {
	if err := s.ensureDir(filepath.Dir(path)); err != nil {
		return err
	}
	return s.writeAtomicIn(s.tmp, path, data)
}

func (s *Store) writeAtomicIn(tmpdir, path string, data []byte) error {
	f, err := os.CreateTemp(tmpdir, "w-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return fsyncDir(filepath.Dir(path))
}

// writeContentAtomic stores immutable content at path unless it is already there (then it only
// marks it as used now, for garbage collection). It must be called under the shared GC lock.
func (s *Store) writeContentAtomic(path string, data []byte) error {
	if err := touch(path); err == nil {
		return nil
	}
	if err := s.ensureDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.tmp, "c-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := renameNoReplace(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return touch(path)
		}
		return err
	}
	return fsyncDir(filepath.Dir(path))
}

// createEmpty makes an empty marker file durably (a blob link).
func (s *Store) createEmpty(path string) error {
	created, err := s.createEmptyNoSync(path)
	if err != nil || !created {
		return err
	}
	return fsyncDir(filepath.Dir(path))
}

// createEmptyNoSync makes an empty marker file; the caller syncs its directory when created.
func (s *Store) createEmptyNoSync(path string) (created bool, err error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	}
	if err := s.ensureDir(filepath.Dir(path)); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return false, err
	}
	return true, f.Close()
}

// ---- the lock garbage collection sweeps under (see gc.go)

const (
	lockSH = 1 // unix.LOCK_SH
	lockEX = 2 // unix.LOCK_EX
	lockNB = 4 // unix.LOCK_NB
	lockUN = 8 // unix.LOCK_UN
)

// sharedGCLock is held while content that garbage collection could sweep is checked and given a
// new reference (a blob committed or mounted, a manifest stored). Each holder opens its own file
// description: flock locks belong to those, so holders in one process exclude a collector in
// another and never release each other's lock.
func (s *Store) sharedGCLock(ctx context.Context) (func(), error) {
	f, err := os.Open(filepath.Join(s.root, "gc.lock"))
	if err != nil {
		return nil, fmt.Errorf("open gc lock: %w", err)
	}
	// The collector holds the exclusive lock only for short batches; wait, but honour ctx.
	for {
		err := flock(f, lockSH|lockNB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !isWouldBlock(err) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
