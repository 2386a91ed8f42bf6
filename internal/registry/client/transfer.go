package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// Sink receives what Pull fetches; the local content store implements it.
//
// Pull ingests the config and layers of an image manifest before the manifest, and the manifests
// of an index before the index, so a sink that has a manifest has everything it refers to (for an
// index: everything of the platforms that were pulled).
type Sink interface {
	// Has reports whether the content desc describes (its digest, with its size) is committed.
	// Pull fetches nothing the sink has. An error aborts the pull.
	Has(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	// Ingest reads r to io.EOF, checks that what it read has desc's size and digest, and commits
	// it atomically: afterwards the content is there whole, or not at all. An error from r (the
	// client's own verification failed, or the download broke for good) must abort without
	// committing. It is called from several goroutines at once, possibly for the same digest, and
	// it is not an error if the content is already there (r may then be left unread).
	Ingest(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
}

// Source supplies what Push sends; the local content store implements it.
type Source interface {
	// Open opens the content desc describes. Push opens a descriptor as often as it needs (every
	// resumption of an upload reopens it and seeks to an offset if the reader is an io.Seeker, or
	// reads up to it otherwise), from several goroutines at once, and closes what it opened.
	// Missing content is an error wrapping errdefs.ErrNotFound.
	Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// State is where the transfer of one descriptor stands.
type State int

const (
	// StateStarted: the transfer begins (Done is 0, or the offset a resumption starts from).
	StateStarted State = iota
	// StateTransferring: Done bytes have been transferred so far.
	StateTransferring
	// StateDone: transferred and verified (for Pull, committed by the sink).
	StateDone
	// StateExists: nothing to transfer, the destination already has it.
	StateExists
	// StateMounted: Push only, the registry mounted it from another repository.
	StateMounted
)

func (s State) String() string {
	switch s {
	case StateStarted:
		return "started"
	case StateTransferring:
		return "transferring"
	case StateDone:
		return "done"
	case StateExists:
		return "exists"
	case StateMounted:
		return "mounted"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Progress is one progress report: bytes per descriptor, for a CLI to draw bars with.
type Progress struct {
	Descriptor ocispec.Descriptor
	State      State
	// Done is the bytes of Descriptor transferred so far (Descriptor.Size once done).
	Done int64
}

// ProgressFunc receives progress reports. Calls are serialised (never two at once), so it needs
// no locking of its own, and should return quickly: transfers wait for it.
type ProgressFunc func(Progress)

// reporter serialises a ProgressFunc.
type reporter struct {
	mu sync.Mutex
	fn ProgressFunc
}

func (r *reporter) report(d ocispec.Descriptor, s State, done int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(Progress{Descriptor: d, State: s, Done: done})
}

// PullOptions tunes Pull.
type PullOptions struct {
	// Platform selects the manifest of an index (default: DefaultPlatform()).
	Platform *ocispec.Platform
	// AllPlatforms pulls every manifest of an index.
	AllPlatforms bool
	// Progress receives reports per blob and manifest.
	Progress ProgressFunc
	// Concurrency bounds the blobs fetched at once (default Config.Concurrency).
	Concurrency int
}

// PullResult says what Pull brought.
type PullResult struct {
	// Root is what the reference resolved to: an index or an image manifest.
	Root ocispec.Descriptor
	// Manifests are the image manifests pulled: one, unless PullOptions.AllPlatforms.
	Manifests []ocispec.Descriptor
}

// maxDepth bounds indexes of indexes.
const maxDepth = 4

// node is a manifest of the walk.
type node struct {
	desc ocispec.Descriptor
	data []byte
}

// graph is an image's content in the order it is written: blobs (deduplicated), then manifests
// children first.
type graph struct {
	blobs     []ocispec.Descriptor
	seen      map[string]bool
	manifests []node
	images    []ocispec.Descriptor
}

func (g *graph) addBlob(d ocispec.Descriptor) {
	if g.seen[string(d.Digest)] {
		return
	}
	g.seen[string(d.Digest)] = true
	g.blobs = append(g.blobs, d)
}

// Pull fetches the image ref names into sink: the manifest or index, the platform's manifest of
// an index (or all of them), and their configs and layers, concurrently, skipping what the sink
// has. Everything is verified against its digest before the sink commits it.
func (c *Client) Pull(ctx context.Context, ref reference.Image, sink Sink, opts PullOptions) (PullResult, error) {
	res, err := c.pull(ctx, ref, sink, opts)
	if err != nil {
		return res, fmt.Errorf("pull %s: %w", ref, err)
	}
	return res, nil
}

func (c *Client) pull(ctx context.Context, ref reference.Image, sink Sink, opts PullOptions) (PullResult, error) {
	want := DefaultPlatform()
	if opts.Platform != nil {
		want = *opts.Platform
	}
	root, data, err := c.fetchManifest(ctx, ref.Host, ref.Name, ref.Reference(), ref.Digest)
	if err != nil {
		return PullResult{}, fmt.Errorf("manifest: %w", err)
	}
	g := &graph{seen: map[string]bool{}}
	var visit func(desc ocispec.Descriptor, data []byte, depth int) error
	visit = func(desc ocispec.Descriptor, data []byte, depth int) error {
		m, err := manifest.Parse(desc.MediaType, data)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if manifest.IsIndex(m.MediaType) {
			if depth >= maxDepth {
				return fmt.Errorf("index %s: indexes nested deeper than %d: %w", desc.Digest, maxDepth, errdefs.ErrInvalidArgument)
			}
			children := m.Manifests
			if !opts.AllPlatforms {
				pick, ok := selectPlatform(want, m.Manifests)
				if !ok {
					var have []string
					for _, d := range m.Manifests {
						have = append(have, platformString(d.Platform))
					}
					return fmt.Errorf("index %s has no manifest for %s (it has %s): %w", desc.Digest, platformString(&want),
						strings.Join(have, ", "), errdefs.ErrNotFound)
				}
				children = []ocispec.Descriptor{pick}
			}
			for _, child := range children {
				if g.seen[string(child.Digest)] {
					continue
				}
				g.seen[string(child.Digest)] = true
				cd, cdata, err := c.fetchManifest(ctx, ref.Host, ref.Name, string(child.Digest), child.Digest)
				if err != nil {
					return fmt.Errorf("manifest %s (%s): %w", child.Digest, platformString(child.Platform), err)
				}
				if cd.Size != child.Size {
					return fmt.Errorf("manifest %s: %d bytes, the index says %d: %w", child.Digest, cd.Size, child.Size, ErrDigestMismatch)
				}
				if err := visit(child, cdata, depth+1); err != nil {
					return err
				}
			}
		} else {
			g.images = append(g.images, desc)
			for _, b := range m.Blobs {
				g.addBlob(b)
			}
		}
		g.manifests = append(g.manifests, node{desc, data})
		return nil
	}
	if err := visit(root, data, 0); err != nil {
		return PullResult{}, err
	}
	rep := &reporter{fn: opts.Progress}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = c.cfg.Concurrency
	}
	err = parallel(ctx, conc, g.blobs, func(ctx context.Context, d ocispec.Descriptor) error {
		return c.pullBlob(ctx, ref, d, sink, rep)
	})
	if err != nil {
		return PullResult{}, err
	}
	for _, n := range g.manifests {
		has, err := sink.Has(ctx, n.desc)
		if err != nil {
			return PullResult{}, fmt.Errorf("manifest %s: sink: %w", n.desc.Digest, err)
		}
		if has {
			rep.report(n.desc, StateExists, n.desc.Size)
			continue
		}
		if err := sink.Ingest(ctx, n.desc, bytes.NewReader(n.data)); err != nil {
			return PullResult{}, fmt.Errorf("manifest %s: ingest: %w", n.desc.Digest, err)
		}
		rep.report(n.desc, StateDone, n.desc.Size)
	}
	return PullResult{Root: root, Manifests: g.images}, nil
}

func (c *Client) pullBlob(ctx context.Context, ref reference.Image, d ocispec.Descriptor, sink Sink, rep *reporter) error {
	has, err := sink.Has(ctx, d)
	if err != nil {
		return fmt.Errorf("blob %s: sink: %w", d.Digest, err)
	}
	if has {
		rep.report(d, StateExists, d.Size)
		return nil
	}
	rep.report(d, StateStarted, 0)
	rc, err := c.FetchBlob(ctx, ref, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	if rep.fn != nil {
		r = &countingReader{r: rc, fn: func(n int64) { rep.report(d, StateTransferring, n) }}
	}
	if err := sink.Ingest(ctx, d, r); err != nil {
		return fmt.Errorf("blob %s: ingest: %w", d.Digest, err)
	}
	rep.report(d, StateDone, d.Size)
	return nil
}

// PushOptions tunes Push.
type PushOptions struct {
	// MountFrom names repositories on the target registry that may hold the blobs already (the
	// repository the image was pulled from, say): cross-repository mounts are tried from them
	// before uploading.
	MountFrom []string
	// Progress receives reports per blob and manifest.
	Progress ProgressFunc
	// Concurrency bounds the blobs pushed at once (default Config.Concurrency).
	Concurrency int
}

// Push sends the image whose root (manifest or index) is root from src to ref: every blob the
// registry lacks, concurrently, then the manifests children first, and the root under ref's tag
// (or its digest, which must then be root's). An index is pushed with all its manifests, which
// src must hold. It returns the root's descriptor as the registry stored it.
func (c *Client) Push(ctx context.Context, src Source, root ocispec.Descriptor, ref reference.Image, opts PushOptions) (ocispec.Descriptor, error) {
	d, err := c.push(ctx, src, root, ref, opts)
	if err != nil {
		return d, fmt.Errorf("push %s: %w", ref, err)
	}
	return d, nil
}

func (c *Client) push(ctx context.Context, src Source, root ocispec.Descriptor, ref reference.Image, opts PushOptions) (ocispec.Descriptor, error) {
	if ref.Digest != "" && ref.Digest != root.Digest {
		return root, fmt.Errorf("the reference's digest is not the image's %s: %w", root.Digest, errdefs.ErrInvalidArgument)
	}
	g := &graph{seen: map[string]bool{}}
	var visit func(desc ocispec.Descriptor, depth int) error
	visit = func(desc ocispec.Descriptor, depth int) error {
		data, err := c.readSource(ctx, src, desc)
		if err != nil {
			return err
		}
		m, err := manifest.Parse(desc.MediaType, data)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if manifest.IsIndex(m.MediaType) {
			if depth >= maxDepth {
				return fmt.Errorf("index %s: indexes nested deeper than %d: %w", desc.Digest, maxDepth, errdefs.ErrInvalidArgument)
			}
			for _, child := range m.Manifests {
				if g.seen[string(child.Digest)] {
					continue
				}
				g.seen[string(child.Digest)] = true
				if err := visit(child, depth+1); err != nil {
					return err
				}
			}
		} else {
			g.images = append(g.images, desc)
			for _, b := range m.Blobs {
				g.addBlob(b)
			}
		}
		g.manifests = append(g.manifests, node{desc, data})
		return nil
	}
	if err := visit(root, 0); err != nil {
		return root, err
	}
	rep := &reporter{fn: opts.Progress}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = c.cfg.Concurrency
	}
	err := parallel(ctx, conc, g.blobs, func(ctx context.Context, d ocispec.Descriptor) error {
		rep.report(d, StateStarted, 0)
		bo := PushBlobOptions{MountFrom: opts.MountFrom}
		if rep.fn != nil {
			bo.Progress = func(n int64) { rep.report(d, StateTransferring, n) }
		}
		st, err := c.PushBlob(ctx, ref, d, src, bo)
		if err != nil {
			return err
		}
		rep.report(d, st, d.Size)
		return nil
	})
	if err != nil {
		return root, err
	}
	for _, n := range g.manifests[:len(g.manifests)-1] {
		if err := c.putManifest(ctx, ref.Host, ref.Name, string(n.desc.Digest), n.desc, n.data); err != nil {
			return root, fmt.Errorf("manifest %s: %w", n.desc.Digest, err)
		}
		rep.report(n.desc, StateDone, n.desc.Size)
	}
	target := ref.Tag
	if target == "" {
		target = string(root.Digest)
	}
	if err := c.putManifest(ctx, ref.Host, ref.Name, target, root, g.manifests[len(g.manifests)-1].data); err != nil {
		return root, fmt.Errorf("manifest %s: %w", root.Digest, err)
	}
	rep.report(root, StateDone, root.Size)
	return root, nil
}

// readSource reads a manifest from src, bounded and verified.
func (c *Client) readSource(ctx context.Context, src Source, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > c.cfg.MaxManifestBytes {
		return nil, fmt.Errorf("manifest %s: %d bytes, more than the %d accepted: %w", desc.Digest, desc.Size, c.cfg.MaxManifestBytes, errdefs.ErrInvalidArgument)
	}
	if _, err := reference.ParseDigest(string(desc.Digest)); err != nil {
		return nil, fmt.Errorf("manifest %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	rc, err := src.Open(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: source: %w", desc.Digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: source: %w", desc.Digest, err)
	}
	if int64(len(data)) != desc.Size || desc.Digest.Algorithm().FromBytes(data) != desc.Digest {
		return nil, fmt.Errorf("manifest %s: the source's content does not match the descriptor: %w", desc.Digest, ErrDigestMismatch)
	}
	return data, nil
}

// parallel runs fn on every item, at most n at once; the first error cancels the rest and is
// returned.
func parallel[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) {
		once.Do(func() {
			first = err
			cancel(err)
		})
	}
loop:
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
