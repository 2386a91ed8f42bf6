package image

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
)

// UnpackOptions tune Unpack.
type UnpackOptions struct {
	// NoChown leaves files owned by the caller (unprivileged use) and skips device nodes.
	NoChown bool
	// Overlay keeps whiteouts as overlayfs markers instead of applying them (for one layer per dir).
	Overlay bool
	Logger  *slog.Logger
	// LowerDir: see archive.Options (for Overlay: the directories of the layers below).
	LowerDir func(name string) (unix.Stat_t, bool)
	// Progress, if set, is called with each layer's index once it is applied.
	Progress func(layer int, desc ocispec.Descriptor)
}

// Layer is one layer to apply: its blob and the digest of its uncompressed tar.
type Layer struct {
	Desc   ocispec.Descriptor
	DiffID digest.Digest
}

// Layers pairs img's layer descriptors with the config's diff_ids.
func (img *Image) Layers() []Layer {
	out := make([]Layer, len(img.Manifest.Layers))
	for i, l := range img.Manifest.Layers {
		out[i] = Layer{Desc: l}
		if i < len(img.Config.RootFS.DiffIDs) {
			out[i].DiffID = img.Config.RootFS.DiffIDs[i]
		}
	}
	return out
}

// Unpack applies img's layers, in order, into dir (which must exist), flattening them: whiteouts
// remove what lower layers wrote. Each blob's digest and each tar's diff_id are checked; on a
// mismatch the error says which layer, and dir holds a partial tree the caller removes.
//
// Decompression and hashing run ahead of the writing of files, one layer ahead, in goroutines, so
// that on two cores the writer is never waiting for gzip.
func Unpack(ctx context.Context, p Provider, layers []Layer, dir string, o UnpackOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pipes := make([]*chunkPipe, len(layers))
	// A layer's producer starts when the previous one's has finished producing, so that at most one
	// producer is decompressing while the writer applies; its pipe then buffers up to a few MiB.
	var prev chan struct{}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, l := range layers {
		pipes[i] = newChunkPipe(pipeDepth)
		done := make(chan struct{})
		wait := prev
		wg.Go(func() {
			defer close(done)
			if wait != nil {
				select {
				case <-wait:
				case <-ctx.Done():
					pipes[i].closeWithError(ctx.Err())
					return
				}
			}
			pipes[i].closeWithError(produce(ctx, p, l, pipes[i]))
		})
		prev = done
	}
	for i, l := range layers {
		_, err := archive.Apply(ctx, dir, pipes[i], archive.Options{Overlay: o.Overlay, NoChown: o.NoChown, Logger: o.Logger, LowerDir: o.LowerDir})
		if err == nil {
			// The tar ends before its blob does (padding): the producer's verdict on the digests
			// comes with the end of the stream.
			_, err = io.Copy(io.Discard, pipes[i])
		}
		if err != nil {
			cancel()
			for _, p := range pipes[i:] {
				p.drain()
			}
			return fmt.Errorf("layer %d (%s): %w", i, l.Desc.Digest, err)
		}
		if o.Progress != nil {
			o.Progress(i, l.Desc)
		}
	}
	return nil
}

const (
	chunkSize = 1 << 20
	pipeDepth = 8
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// produce decompresses one layer into pipe, checking both digests.
func produce(ctx context.Context, p Provider, l Layer, pipe *chunkPipe) error {
	rc, err := p.Open(ctx, l.Desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	var blob io.Reader = rc
	var blobHash hash.Hash
	if l.Desc.Digest != "" {
		if !l.Desc.Digest.Algorithm().Available() {
			return fmt.Errorf("digest %q: unsupported algorithm: %w", l.Desc.Digest, errdefs.ErrInvalidArgument)
		}
		blobHash = l.Desc.Digest.Algorithm().Hash()
		blob = io.TeeReader(rc, blobHash)
	}
	counted := &countReader{r: blob}
	tr, err := archive.DecompressAuto(counted)
	if err != nil {
		return err
	}
	defer tr.Close()
	var diffHash hash.Hash
	if l.DiffID != "" {
		if !l.DiffID.Algorithm().Available() {
			return fmt.Errorf("diff_id %q: unsupported algorithm: %w", l.DiffID, errdefs.ErrInvalidArgument)
		}
		diffHash = l.DiffID.Algorithm().Hash()
	}
	for {
		bp := chunkPool.Get().(*[]byte)
		n, rerr := io.ReadFull(tr, *bp)
		if n > 0 {
			if diffHash != nil {
				diffHash.Write((*bp)[:n])
			}
			if err := pipe.send(ctx, bp, n); err != nil {
				return err
			}
		} else {
			chunkPool.Put(bp)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("decompress: %w", rerr)
		}
	}
	// The compressed stream may end before the blob does (trailing bytes); the digest is the blob's.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	if l.Desc.Size >= 0 && l.Desc.Digest != "" && counted.n != l.Desc.Size {
		return fmt.Errorf("blob is %d bytes, the manifest says %d: %w", counted.n, l.Desc.Size, errdefs.ErrInvalidArgument)
	}
	if blobHash != nil {
		if got := digest.NewDigest(l.Desc.Digest.Algorithm(), blobHash); got != l.Desc.Digest {
			return fmt.Errorf("blob digest is %s, the manifest says %s: %w", got, l.Desc.Digest, errdefs.ErrInvalidArgument)
		}
	}
	if diffHash != nil {
		if got := digest.NewDigest(l.DiffID.Algorithm(), diffHash); got != l.DiffID {
			return fmt.Errorf("uncompressed digest is %s, the config's diff_id says %s: %w", got, l.DiffID, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// chunkPipe is a pipe with a few pooled chunks of buffer, so that the producer runs ahead of the
// reader instead of in lock step as with io.Pipe.
type chunkPipe struct {
	ch   chan chunk
	cur  chunk
	off  int
	err  error // the producer's verdict, delivered after the last chunk
	once sync.Once
	done chan struct{}
}

type chunk struct {
	buf *[]byte
	n   int
}

func newChunkPipe(depth int) *chunkPipe {
	return &chunkPipe{ch: make(chan chunk, depth), done: make(chan struct{})}
}

func (p *chunkPipe) send(ctx context.Context, bp *[]byte, n int) error {
	select {
	case p.ch <- chunk{bp, n}:
		return nil
	case <-ctx.Done():
		chunkPool.Put(bp)
		return ctx.Err()
	case <-p.done:
		chunkPool.Put(bp)
		return errors.New("reader gone")
	}
}

func (p *chunkPipe) closeWithError(err error) {
	if err == nil {
		err = io.EOF
	}
	p.err = err
	close(p.ch)
}

func (p *chunkPipe) Read(b []byte) (int, error) {
	for p.cur.buf == nil || p.off == p.cur.n {
		if p.cur.buf != nil {
			chunkPool.Put(p.cur.buf)
			p.cur.buf = nil
		}
		c, ok := <-p.ch
		if !ok {
			return 0, p.err
		}
		p.cur, p.off = c, 0
	}
	n := copy(b, (*p.cur.buf)[p.off:p.cur.n])
	p.off += n
	return n, nil
}

// drain stops the producer and recycles what it sent.
func (p *chunkPipe) drain() {
	p.once.Do(func() { close(p.done) })
	for c := range p.ch {
		chunkPool.Put(c.buf)
	}
}
