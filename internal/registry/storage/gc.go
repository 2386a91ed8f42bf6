package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// Garbage collection runs while registries serve the same root, without stopping them.
//
// The protocol: every operation that gives content a new reference (a blob committed or mounted
// into a repository, a manifest stored, which references blobs and manifests) checks that the
// content exists and sets its modification time to "now" while holding a shared flock on gc.lock.
// The collector
//
//  1. takes the exclusive lock, touches gc.epoch and reads back its time T0, and releases it: every
//     operation that started before has finished, every later one will touch what it uses with a
//     time >= T0 (the same kernel clock, which is monotonic unless someone sets it);
//  2. marks everything reachable from the manifests of every repository (walked after step 1, so it
//     sees every manifest stored before T0);
//  3. deletes, in short batches under the exclusive lock, each unmarked blob whose modification
//     time is still before T0 - grace when re-checked under the lock.
//
// A blob a concurrent push references was touched after T0 (kept), or was deleted before the
// push's check (which then fails cleanly: MANIFEST_BLOB_UNKNOWN, never a manifest with a missing
// blob). The grace period keeps blobs that were uploaded recently but whose manifest has not been
// pushed yet: a push in progress is not broken by a collection.

// GCOptions configures a collection.
type GCOptions struct {
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// Grace keeps unreferenced blobs uploaded or last referenced less than Grace before the
	// collection started.
	Grace time.Duration
	// UploadTTL removes uploads that received no data for this long. Zero keeps every upload.
	UploadTTL time.Duration
}

// GCReport says what a collection found and did (or would do, in a dry run).
type GCReport struct {
	Repositories     int
	Manifests        int
	BlobsReferenced  int
	BlobsDeleted     int
	BytesDeleted     int64
	BlobsKeptGrace   int // unreferenced but within the grace period
	LinksDeleted     int // repository links to deleted or missing blobs
	ReferrersDeleted int // referrer entries whose manifest is gone
	UploadsDeleted   int
	Duration         time.Duration
}

// ErrGCRunning means another collection holds the root.
var ErrGCRunning = errors.New("another garbage collection is running on this storage root")

type gcState struct {
	marked    map[digest.Digest]bool
	links     map[digest.Digest][]string // repository links to each blob
	dangling  []string                   // referrer entries whose manifest link is missing
	read      map[digest.Digest]bool     // manifests whose references were marked
	report    *GCReport
	lockf     *os.File
	t0        time.Time
	cutoff    time.Time
	removeAll bool
}

// GC collects unreferenced blobs and abandoned uploads; see the protocol above.
func (s *Store) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	start := time.Now()
	run, err := os.Open(filepath.Join(s.root, "gc.run"))
	if err != nil {
		return nil, err
	}
	defer run.Close()
	if err := flock(run, lockEX|lockNB); err != nil {
		if isWouldBlock(err) {
			return nil, ErrGCRunning
		}
		return nil, err
	}
	lockf, err := os.Open(filepath.Join(s.root, "gc.lock"))
	if err != nil {
		return nil, err
	}
	defer lockf.Close()
	st := &gcState{
		marked: map[digest.Digest]bool{}, links: map[digest.Digest][]string{}, read: map[digest.Digest]bool{},
		report: &GCReport{}, lockf: lockf, removeAll: !opts.DryRun,
	}

	// 1. the epoch
	if err := s.exclusive(ctx, lockf, func() error {
		p := filepath.Join(s.root, "gc.epoch")
		if err := touch(p); err != nil {
			return err
		}
		var sb unix.Stat_t
		if err := unix.Stat(p, &sb); err != nil {
			return &os.PathError{Op: "stat", Path: p, Err: err}
		}
		st.t0 = time.Unix(sb.Mtim.Unix())
		return nil
	}); err != nil {
		return nil, fmt.Errorf("gc epoch: %w", err)
	}
	st.cutoff = st.t0.Add(-opts.Grace)

	// 2. mark
	if err := s.gcMarkRepos(ctx, st, filepath.Join(s.root, "repos"), ""); err != nil {
		return nil, fmt.Errorf("gc mark: %w", err)
	}
	st.report.BlobsReferenced = len(st.marked)

	// 3. sweep
	if err := s.gcSweepBlobs(ctx, st); err != nil {
		return nil, fmt.Errorf("gc sweep: %w", err)
	}
	if err := s.gcDangling(ctx, st); err != nil {
		return nil, fmt.Errorf("gc referrers: %w", err)
	}
	if opts.UploadTTL > 0 {
		n, err := s.purgeUploads(ctx, opts.UploadTTL, opts.DryRun)
		if err != nil {
			return nil, fmt.Errorf("gc uploads: %w", err)
		}
		st.report.UploadsDeleted = n
	}
	if !opts.DryRun {
		s.cleanTmp(ctx)
	}
	st.report.Duration = time.Since(start)
	return st.report, nil
}

// exclusive runs fn with the exclusive GC lock held, waiting for shared holders (short: they
// only check and link content) but honouring ctx.
func (s *Store) exclusive(ctx context.Context, f *os.File, fn func() error) error {
	for {
		err := flock(f, lockEX|lockNB)
		if err == nil {
			break
		}
		if !isWouldBlock(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	defer flock(f, lockUN)
	return fn()
}

func (s *Store) gcMarkRepos(ctx context.Context, st *gcState, dir, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	isRepo := false
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() {
			continue
		}
		switch n {
		case "_manifests":
			isRepo = true
			if err := s.gcMarkManifests(ctx, st, name); err != nil {
				return err
			}
		case "_blobs":
			isRepo = true
			walkDigests(filepath.Join(dir, n), func(d digest.Digest, p string) {
				st.links[d] = append(st.links[d], p)
			})
		case "_referrers":
			s.gcReferrerEntries(st, name, filepath.Join(dir, n))
		default:
			if strings.HasPrefix(n, "_") {
				continue
			}
			child := n
			if name != "" {
				child = name + "/" + n
			}
			if err := s.gcMarkRepos(ctx, st, filepath.Join(dir, n), child); err != nil {
				return err
			}
		}
	}
	if isRepo {
		st.report.Repositories++
	}
	return nil
}

// walkDigests calls fn for every <alg>/<hex> file below dir that names a valid digest.
func walkDigests(dir string, fn func(digest.Digest, string)) {
	algs, _ := os.ReadDir(dir)
	for _, a := range algs {
		files, _ := os.ReadDir(filepath.Join(dir, a.Name()))
		for _, f := range files {
			d, err := reference.ParseDigest(a.Name() + ":" + f.Name())
			if err == nil {
				fn(d, filepath.Join(dir, a.Name(), f.Name()))
			}
		}
	}
}

func (s *Store) gcMarkManifests(ctx context.Context, st *gcState, repo string) error {
	var ds []digest.Digest
	walkDigests(filepath.Join(s.repoPath(repo), "_manifests"), func(d digest.Digest, _ string) { ds = append(ds, d) })
	for _, d := range ds {
		st.report.Manifests++
		if err := s.gcMarkManifest(ctx, st, d); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) gcMarkManifest(ctx context.Context, st *gcState, d digest.Digest) error {
	st.marked[d] = true
	if st.read[d] {
		return nil
	}
	st.read[d] = true
	data, err := os.ReadFile(s.blobPath(d))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			slog.WarnContext(ctx, "gc: a manifest link points at missing content", "digest", d)
			return nil
		}
		return err
	}
	for _, r := range manifest.References(data) {
		st.marked[r] = true
	}
	return nil
}

func (s *Store) gcReferrerEntries(st *gcState, repo, dir string) {
	algs, _ := os.ReadDir(dir)
	for _, a := range algs {
		subjects, _ := os.ReadDir(filepath.Join(dir, a.Name()))
		for _, subj := range subjects {
			sdir := filepath.Join(dir, a.Name(), subj.Name())
			ents, _ := os.ReadDir(sdir)
			for _, e := range ents {
				alg, enc, _ := strings.Cut(e.Name(), "-")
				rd, err := reference.ParseDigest(alg + ":" + enc)
				if err != nil {
					continue
				}
				if _, err := os.Lstat(s.manifestLinkPath(repo, rd)); errors.Is(err, os.ErrNotExist) {
					st.dangling = append(st.dangling, filepath.Join(sdir, e.Name())+"\x00"+s.manifestLinkPath(repo, rd))
				}
			}
		}
	}
}

type gcCandidate struct {
	d    digest.Digest
	path string
}

func (s *Store) gcSweepBlobs(ctx context.Context, st *gcState) error {
	var cands []gcCandidate
	base := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(base)
	if err != nil {
		return err
	}
	for _, a := range algs {
		shards, _ := os.ReadDir(filepath.Join(base, a.Name()))
		for _, sh := range shards {
			if err := ctx.Err(); err != nil {
				return err
			}
			files, _ := os.ReadDir(filepath.Join(base, a.Name(), sh.Name()))
			for _, f := range files {
				d, err := reference.ParseDigest(a.Name() + ":" + f.Name())
				if err != nil || st.marked[d] {
					continue
				}
				p := filepath.Join(base, a.Name(), sh.Name(), f.Name())
				fi, err := os.Stat(p)
				if err != nil {
					continue
				}
				if !fi.ModTime().Before(st.cutoff) {
					st.report.BlobsKeptGrace++
					continue
				}
				cands = append(cands, gcCandidate{d, p})
			}
		}
	}
	// links to blobs that are already missing
	for d, links := range st.links {
		if _, err := os.Stat(s.blobPath(d)); errors.Is(err, os.ErrNotExist) {
			cands = append(cands, gcCandidate{d: d})
			_ = links
		}
	}
	const batch = 64
	for i := 0; i < len(cands); i += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(i+batch, len(cands))
		err := s.exclusive(ctx, st.lockf, func() error {
			for _, c := range cands[i:end] {
				if c.path != "" {
					fi, err := os.Stat(c.path)
					if err != nil || !fi.ModTime().Before(st.cutoff) {
						// touched since: referenced by a push that started after T0
						if err == nil {
							st.report.BlobsKeptGrace++
						}
						continue
					}
					if st.removeAll {
						if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
							return err
						}
					}
					st.report.BlobsDeleted++
					st.report.BytesDeleted += fi.Size()
				} else if _, err := os.Stat(s.blobPath(c.d)); err == nil {
					continue // re-uploaded since the mark: its links are valid again
				}
				for _, l := range st.links[c.d] {
					if st.removeAll {
						if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
							return err
						}
					}
					st.report.LinksDeleted++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// gcDangling removes referrer entries whose manifest is gone, under the exclusive lock so that a
// manifest pushed again meanwhile (link first, entry second) keeps its entry.
func (s *Store) gcDangling(ctx context.Context, st *gcState) error {
	if len(st.dangling) == 0 {
		return nil
	}
	return s.exclusive(ctx, st.lockf, func() error {
		for _, e := range st.dangling {
			entry, link, _ := strings.Cut(e, "\x00")
			if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
				continue
			}
			if st.removeAll {
				if err := os.Remove(entry); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			st.report.ReferrersDeleted++
		}
		return nil
	})
}

// PurgeUploads removes uploads that received no data for ttl and are not being written (their
// lock is free), and returns how many it removed. The server runs it periodically.
func (s *Store) PurgeUploads(ctx context.Context, ttl time.Duration) (int, error) {
	return s.purgeUploads(ctx, ttl, false)
}

func (s *Store) purgeUploads(ctx context.Context, ttl time.Duration, dryRun bool) (int, error) {
	base := filepath.Join(s.root, "uploads")
	ents, err := os.ReadDir(base)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	n := 0
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		dir := filepath.Join(base, e.Name())
		if validUploadID(e.Name()) != nil {
			// not ours: something was put there by hand or by a broken process
			if fi, err := os.Lstat(dir); err == nil && now.Sub(fi.ModTime()) > ttl {
				if !dryRun {
					os.RemoveAll(dir)
				}
				n++
			}
			continue
		}
		f, err := os.Open(filepath.Join(dir, "data"))
		if err != nil {
			// no data: committed or cancelled part way; give a request in flight a minute
			if fi, err := os.Lstat(dir); err == nil && now.Sub(fi.ModTime()) > time.Minute {
				if !dryRun {
					os.RemoveAll(dir)
				}
				n++
			}
			continue
		}
		if flock(f, lockEX|lockNB) != nil {
			f.Close() // being written
			continue
		}
		fi, err := f.Stat()
		if err == nil && now.Sub(fi.ModTime()) > ttl {
			if !dryRun {
				s.dropHash(e.Name())
				os.RemoveAll(dir)
			}
			n++
		}
		f.Close()
	}
	return n, nil
}
