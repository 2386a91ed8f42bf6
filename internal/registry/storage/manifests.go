package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// A manifest's content is a blob (blobs/<alg>/..); the repository holds a link to it,
// repos/<name>/_manifests/<alg>/<hex>, whose content is the media type it was pushed with. A tag
// is repos/<name>/_tags/<tag> holding a digest. A manifest with a subject is also listed under
// repos/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>, holding its referrers descriptor.

// Manifest is a stored manifest.
type Manifest struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
	// Data is nil from StatManifest. It may be shared with the store's cache: read only.
	Data []byte
}

func (s *Store) resolve(repo string, ref reference.Reference) (digest.Digest, error) {
	if ref.Digest != "" {
		return ref.Digest, validDigest(ref.Digest)
	}
	if err := reference.ValidateTag(ref.Tag); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	b, err := s.small.read(s.tagPath(repo, ref.Tag))
	if err != nil {
		return "", notExist(err, ErrManifestUnknown)
	}
	d, err := reference.ParseDigest(b)
	if err != nil {
		return "", fmt.Errorf("tag %s of %s holds %q: %w", ref.Tag, repo, b, err)
	}
	return d, nil
}

func (s *Store) manifestType(repo string, d digest.Digest) (string, error) {
	mt, err := s.small.read(s.manifestLinkPath(repo, d))
	if err != nil {
		return "", notExist(err, ErrManifestUnknown)
	}
	return mt, nil
}

// GetManifest reads a manifest by tag or digest.
func (s *Store) GetManifest(ctx context.Context, repo string, ref reference.Reference) (*Manifest, error) {
	return s.getManifest(repo, ref, true)
}

// StatManifest is GetManifest without the content.
func (s *Store) StatManifest(ctx context.Context, repo string, ref reference.Reference) (*Manifest, error) {
	return s.getManifest(repo, ref, false)
}

func (s *Store) getManifest(repo string, ref reference.Reference, data bool) (*Manifest, error) {
	if err := validRepo(repo); err != nil {
		return nil, err
	}
	d, err := s.resolve(repo, ref)
	if err != nil {
		return nil, err
	}
	mt, err := s.manifestType(repo, d)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Digest: d, MediaType: mt}
	// The content is immutable, and the link was just seen: the cached bytes are the manifest's.
	if b := s.mcache.get(string(d)); b != nil {
		m.Size = int64(len(b))
		if data {
			m.Data = b
		}
		return m, nil
	}
	b, err := os.ReadFile(s.blobPath(d))
	if err != nil {
		return nil, notExist(err, ErrManifestUnknown)
	}
	s.mcache.put(string(d), b)
	m.Size = int64(len(b))
	if data {
		m.Data = b
	}
	return m, nil
}

// ManifestPut is a manifest to store: its content, digest (already checked against the content by
// the caller), media type, what parsing it found, and the tags to point at it.
type ManifestPut struct {
	Digest    digest.Digest
	MediaType string
	Data      []byte
	Parsed    *manifest.Manifest
	Tags      []string
}

// PutManifest stores a manifest after checking that every blob and manifest it refers to is in
// the repository with the size the manifest says. The order of writes (content, link, referrer
// entry, tags) means a crash leaves at worst unreferenced content, never a manifest whose
// references are missing.
func (s *Store) PutManifest(ctx context.Context, repo string, p ManifestPut) error {
	if err := validRepo(repo); err != nil {
		return err
	}
	if err := validDigest(p.Digest); err != nil {
		return err
	}
	for _, t := range p.Tags {
		if err := reference.ValidateTag(t); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if p.Parsed == nil || !manifest.Known(p.MediaType) {
		return fmt.Errorf("%w: unparsed manifest or unknown media type %q", ErrInvalid, p.MediaType)
	}
	release, err := s.sharedGCLock(ctx)
	if err != nil {
		return err
	}
	defer release()
	for _, b := range p.Parsed.Blobs {
		if err := s.checkRef(s.blobLinkPath(repo, b.Digest), b); err != nil {
			return err
		}
	}
	for _, m := range p.Parsed.Manifests {
		if err := s.checkRef(s.manifestLinkPath(repo, m.Digest), m); err != nil {
			return err
		}
	}
	if err := s.writeContentAtomic(s.blobPath(p.Digest), p.Data); err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	link := s.manifestLinkPath(repo, p.Digest)
	if old, err := os.ReadFile(link); err != nil || string(old) != p.MediaType {
		if err := s.writeAtomic(link, []byte(p.MediaType)); err != nil {
			return fmt.Errorf("link manifest: %w", err)
		}
	}
	if subj := p.Parsed.Subject; subj != nil {
		desc, _ := json.Marshal(p.Parsed.Descriptor(p.Digest, int64(len(p.Data))))
		if err := s.writeAtomic(filepath.Join(s.referrersDir(repo, subj.Digest), referrerName(p.Digest)), desc); err != nil {
			return fmt.Errorf("record referrer: %w", err)
		}
	}
	for _, t := range p.Tags {
		tp := s.tagPath(repo, t)
		if old, err := os.ReadFile(tp); err == nil && string(old) == p.Digest.String() {
			continue
		}
		if err := s.writeAtomic(tp, []byte(p.Digest)); err != nil {
			return fmt.Errorf("tag %s: %w", t, err)
		}
	}
	return nil
}

// checkRef checks, under the shared GC lock, that the repository links the referenced content,
// that the content exists with the declared size, and marks it used now.
func (s *Store) checkRef(link string, d ocispec.Descriptor) error {
	if _, err := os.Lstat(link); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &ManifestBlobUnknownError{Digest: d.Digest}
		}
		return err
	}
	p := s.blobPath(d.Digest)
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &ManifestBlobUnknownError{Digest: d.Digest}
		}
		return err
	}
	if fi.Size() != d.Size {
		return fmt.Errorf("%w: %s is %d bytes, the manifest says %d", ErrManifestInvalid, d.Digest, fi.Size(), d.Size)
	}
	if err := touch(p); err != nil {
		return notExist(err, &ManifestBlobUnknownError{Digest: d.Digest})
	}
	return nil
}

// DeleteManifest removes a manifest from a repository, with the tags that point at it and its
// entry in the referrers of its subject. Tags go first: a crash part way leaves an untagged
// manifest (the delete did not happen yet), or a referrer entry whose manifest is gone, which
// Referrers skips and garbage collection removes.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	if err := validRepo(repo); err != nil {
		return err
	}
	if err := validDigest(d); err != nil {
		return err
	}
	link := s.manifestLinkPath(repo, d)
	if _, err := os.Lstat(link); err != nil {
		return notExist(err, ErrManifestUnknown)
	}
	tags, err := s.tagsOf(repo, d)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if err := os.Remove(s.tagPath(repo, t)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	var subj *ocispec.Descriptor
	if data, err := os.ReadFile(s.blobPath(d)); err == nil {
		subj = manifest.SubjectOf(data)
	}
	if err := os.Remove(link); err != nil {
		return notExist(err, ErrManifestUnknown)
	}
	if subj != nil {
		os.Remove(filepath.Join(s.referrersDir(repo, subj.Digest), referrerName(d)))
	}
	return nil
}

// tagsOf lists the tags of repo that point at d.
func (s *Store) tagsOf(repo string, d digest.Digest) ([]string, error) {
	dir := filepath.Join(s.repoPath(repo), "_tags")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && string(b) == d.String() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// DeleteTag removes a tag; the manifest stays.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	if err := validRepo(repo); err != nil {
		return err
	}
	if err := reference.ValidateTag(tag); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := os.Remove(s.tagPath(repo, tag)); err != nil {
		return notExist(err, ErrManifestUnknown)
	}
	return nil
}

// Tags lists a repository's tags, sorted. A repository that does not exist is ErrNameUnknown.
func (s *Store) Tags(ctx context.Context, repo string) ([]string, error) {
	if err := validRepo(repo); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(s.repoPath(repo), "_tags"))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if _, err := os.Stat(s.repoPath(repo)); err != nil {
			return nil, notExist(err, ErrNameUnknown)
		}
		return []string{}, nil
	}
	tags := make([]string, 0, len(ents))
	for _, e := range ents {
		if reference.ValidateTag(e.Name()) == nil {
			tags = append(tags, e.Name())
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// Referrers lists the manifests of repo whose subject is d, sorted by digest. A subject nothing
// refers to (or that does not exist) has no referrers: that is not an error.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest) ([]ocispec.Descriptor, error) {
	if err := validRepo(repo); err != nil {
		return nil, err
	}
	if err := validDigest(d); err != nil {
		return nil, err
	}
	dir := s.referrersDir(repo, d)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return []ocispec.Descriptor{}, nil
		}
		return nil, err
	}
	out := make([]ocispec.Descriptor, 0, len(ents))
	for _, e := range ents {
		alg, enc, ok := strings.Cut(e.Name(), "-")
		if !ok {
			continue
		}
		rd, err := reference.ParseDigest(alg + ":" + enc)
		if err != nil {
			continue
		}
		// The manifest may have been deleted by a request that crashed before removing this.
		if _, err := os.Lstat(s.manifestLinkPath(repo, rd)); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var desc ocispec.Descriptor
		if json.Unmarshal(b, &desc) != nil || desc.Digest != rd {
			continue
		}
		out = append(out, desc)
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// Repositories lists every repository that holds a manifest or a blob, sorted.
func (s *Store) Repositories(ctx context.Context) ([]string, error) {
	var out []string
	var walk func(dir, name string) error
	walk = func(dir, name string) error {
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
			if n == "_manifests" || n == "_blobs" {
				isRepo = true
				continue
			}
			if strings.HasPrefix(n, "_") {
				continue
			}
			child := n
			if name != "" {
				child = name + "/" + n
			}
			if err := walk(filepath.Join(dir, n), child); err != nil {
				return err
			}
		}
		if isRepo && name != "" {
			out = append(out, name)
		}
		return nil
	}
	if err := walk(filepath.Join(s.root, "repos"), ""); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}
