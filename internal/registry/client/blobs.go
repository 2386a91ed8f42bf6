package client

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// FetchBlob opens the blob desc describes in the repository repo names (its tag and digest are
// ignored). The reader verifies while it streams: reading past desc.Size, or a digest other than
// desc.Digest at the end, is an ErrDigestMismatch error from Read in place of io.EOF, so a consumer
// that commits only on io.EOF never commits bad content. A connection that breaks mid-way is
// resumed with a Range request from where it broke (or, if the registry ignores ranges, by
// skipping what was already read), up to the retry policy's attempts without progress.
func (c *Client) FetchBlob(ctx context.Context, repo reference.Image, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if _, err := reference.ParseDigest(string(desc.Digest)); err != nil {
		return nil, fmt.Errorf("fetch blob %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	b := &blobReader{c: c, ctx: ctx, repo: repo, desc: desc, h: desc.Digest.Algorithm().Hash()}
	if err := b.open(); err != nil {
		return nil, b.wrap(err)
	}
	return b, nil
}

type blobReader struct {
	c     *Client
	ctx   context.Context
	repo  reference.Image
	desc  ocispec.Descriptor
	h     hash.Hash
	body  io.ReadCloser
	off   int64
	fails int   // consecutive failed resumptions
	err   error // sticky
}

func (b *blobReader) wrap(err error) error {
	return fmt.Errorf("fetch blob %s from %s: %w", b.desc.Digest, b.repo.Repository(), err)
}

// open GETs the blob from b.off on.
func (b *blobReader) open() error {
	h := http.Header{}
	if b.off > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(b.off, 10)+"-")
	}
	resp, err := b.c.do(b.ctx, &req{
		method: http.MethodGet, url: b.c.blobURL(b.repo.Host, b.repo.Name, string(b.desc.Digest)), header: h,
		host: b.repo.Host, repo: b.repo.Name, scopes: []string{repoScope(b.repo.Name, "pull")},
	})
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && b.off > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != b.off {
			resp.Body.Close()
			return fmt.Errorf("asked for bytes from %d, the registry sent Content-Range %q: %w",
				b.off, clip(resp.Header.Get("Content-Range"), 60), errdefs.ErrInvalidArgument)
		}
	case resp.StatusCode == http.StatusOK:
		if b.off > 0 {
			// the registry ignored the range: skip what we have
			if _, err := io.CopyN(io.Discard, resp.Body, b.off); err != nil {
				resp.Body.Close()
				return fmt.Errorf("skipping %d bytes already read: %w", b.off, err)
			}
		}
	default:
		return responseError(resp)
	}
	b.body = resp.Body
	return nil
}

func contentRangeStart(h string) (int64, bool) {
	s, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		if b.body == nil {
			if err := b.open(); err != nil {
				if b.retry(err) {
					continue
				}
				b.err = b.wrap(err)
				return 0, b.err
			}
		}
		n, err := b.body.Read(p)
		if n > 0 {
			if b.off+int64(n) > b.desc.Size {
				b.err = b.wrap(fmt.Errorf("the registry sent more than the %d bytes the descriptor says: %w", b.desc.Size, ErrDigestMismatch))
				return 0, b.err
			}
			b.h.Write(p[:n])
			b.off += int64(n)
			b.fails = 0
		}
		if err == io.EOF && b.off == b.desc.Size {
			if got := digest.NewDigest(b.desc.Digest.Algorithm(), b.h); got != b.desc.Digest {
				b.err = b.wrap(fmt.Errorf("received content has digest %s: %w", got, ErrDigestMismatch))
				return n, b.err
			}
			b.err = io.EOF
			return n, io.EOF
		}
		if err == nil {
			return n, nil
		}
		// a short body (io.EOF early, or io.ErrUnexpectedEOF) or a broken connection
		b.body.Close()
		b.body = nil
		if err == io.EOF {
			err = fmt.Errorf("body ended after %d of %d bytes: %w", b.off, b.desc.Size, io.ErrUnexpectedEOF)
		}
		if !b.retry(err) {
			b.err = b.wrap(err)
			return n, b.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// retry decides whether to resume after err, and waits before doing so.
func (b *blobReader) retry(err error) bool {
	if !transient(b.ctx, err) {
		return false
	}
	b.fails++
	if b.fails >= b.c.retry.Attempts {
		return false
	}
	d := b.c.retry.backoff(b.fails)
	slog.DebugContext(b.ctx, "blob download interrupted, resuming", "digest", b.desc.Digest, "offset", b.off, "err", err, "in", d)
	return wait(b.ctx, d) == nil
}

func (b *blobReader) Close() error {
	if b.body != nil {
		err := b.body.Close()
		b.body = nil
		return err
	}
	return nil
}

// PushBlobOptions tunes PushBlob.
type PushBlobOptions struct {
	// MountFrom names repositories on the same registry that may hold the blob: a cross-repository
	// mount is tried from each before uploading.
	MountFrom []string
	// Progress, if set, is called with the bytes the registry has acknowledged or is being sent.
	Progress func(done int64)
}

// PushBlob makes the blob desc describes exist in the repository repo names: nothing is sent if
// a HEAD finds it there, a mount from opts.MountFrom is tried next, and else it is uploaded from
// src: in one PUT up to Config.MonolithicMax, in PATCH chunks above (or after a failed PUT). A
// chunked upload that breaks asks the registry how much it holds and goes on from there. It
// returns StateExists, StateMounted or StateDone.
func (c *Client) PushBlob(ctx context.Context, repo reference.Image, desc ocispec.Descriptor, src Source, opts PushBlobOptions) (State, error) {
	st, err := c.pushBlob(ctx, repo, desc, src, opts)
	if err != nil {
		return st, fmt.Errorf("push blob %s to %s: %w", desc.Digest, repo.Repository(), err)
	}
	return st, nil
}

func (c *Client) pushBlob(ctx context.Context, repo reference.Image, desc ocispec.Descriptor, src Source, opts PushBlobOptions) (State, error) {
	if _, err := reference.ParseDigest(string(desc.Digest)); err != nil {
		return 0, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if desc.Size < 0 {
		return 0, fmt.Errorf("size %d: %w", desc.Size, errdefs.ErrInvalidArgument)
	}
	pull := []string{repoScope(repo.Name, "pull")}
	push := []string{repoScope(repo.Name, "pull", "push")}
	resp, err := c.do(ctx, &req{method: http.MethodHead, url: c.blobURL(repo.Host, repo.Name, string(desc.Digest)),
		host: repo.Host, repo: repo.Name, scopes: pull})
	if err != nil {
		return 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		drain(resp)
		return StateExists, nil
	case http.StatusNotFound:
		drain(resp)
	default:
		return 0, responseError(resp)
	}
	uploads := c.baseURL(repo.Host) + "/v2/" + repo.Name + "/blobs/uploads/"
	var loc *url.URL
	var minChunk int64
	var sources []string
	for _, from := range opts.MountFrom {
		if from != repo.Name && reference.ValidateName(from) == nil {
			sources = append(sources, from)
		}
	}
	for i, from := range sources {
		q := url.Values{"mount": {string(desc.Digest)}, "from": {from}}
		resp, err := c.do(ctx, &req{method: http.MethodPost, url: uploads + "?" + q.Encode(), length: 0,
			body: func() (io.ReadCloser, error) { return http.NoBody, nil },
			host: repo.Host, repo: repo.Name, scopes: append(push, repoScope(from, "pull"))})
		if err != nil {
			return 0, err
		}
		switch resp.StatusCode {
		case http.StatusCreated:
			drain(resp)
			return StateMounted, nil
		case http.StatusAccepted:
			// Not mountable from there (unknown, or not ours to read): the registry opened an
			// upload session instead. The last one is used for the upload; the others are
			// cancelled, so that they do not linger until the registry purges them.
			l, lerr := resp.Location()
			drain(resp)
			if lerr != nil {
				return 0, fmt.Errorf("upload session without a Location: %w", errdefs.ErrInvalidArgument)
			}
			if i == len(sources)-1 {
				loc, minChunk = l, chunkMin(resp)
				break
			}
			if resp, err := c.do(ctx, &req{method: http.MethodDelete, url: l.String(),
				host: repo.Host, repo: repo.Name, scopes: push}); err == nil {
				drain(resp)
			}
		default:
			err := responseError(resp)
			slog.DebugContext(ctx, "cross-repository mount refused", "digest", desc.Digest, "from", from, "err", err)
		}
	}
	u := &upload{c: c, ctx: ctx, repo: repo, desc: desc, src: src, progress: opts.Progress, uploads: uploads,
		scopes: push, loc: loc, chunk: max(c.cfg.ChunkSize, minChunk)}
	if err := u.run(); err != nil {
		return 0, err
	}
	return StateDone, nil
}

func chunkMin(resp *http.Response) int64 {
	n, err := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// upload is one blob upload session, resumable.
type upload struct {
	c        *Client
	ctx      context.Context
	repo     reference.Image
	desc     ocispec.Descriptor
	src      Source
	progress func(int64)
	uploads  string
	scopes   []string
	loc      *url.URL // the session's current location; nil before it starts
	chunk    int64
	off      int64 // bytes the registry holds
}

// start opens a new session.
func (u *upload) start() error {
	resp, err := u.c.do(u.ctx, &req{method: http.MethodPost, url: u.uploads, length: 0,
		body: func() (io.ReadCloser, error) { return http.NoBody, nil },
		host: u.repo.Host, repo: u.repo.Name, scopes: u.scopes})
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusAccepted); err != nil {
		return err
	}
	drain(resp)
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("upload session without a Location: %w", errdefs.ErrInvalidArgument)
	}
	u.loc, u.off = loc, 0
	u.chunk = max(u.chunk, chunkMin(resp))
	return nil
}

func (u *upload) run() error {
	if u.loc == nil {
		if err := u.start(); err != nil {
			return err
		}
	}
	monolithic := u.desc.Size <= u.c.cfg.MonolithicMax
	fails := 0 // consecutive failures without progress
	held := u.off
	for {
		var err error
		if monolithic {
			err = u.put(0, u.desc.Size)
		} else {
			err = u.chunks()
			if err == nil {
				err = u.put(u.off, 0)
			}
		}
		if err == nil {
			return nil
		}
		var re *ResponseError
		isRange := errors.As(err, &re) && re.Status == http.StatusRequestedRangeNotSatisfiable
		if !isRange && !transient(u.ctx, err) {
			return err
		}
		fails++
		if fails >= u.c.retry.Attempts {
			return err
		}
		d := u.c.retry.backoff(fails)
		slog.DebugContext(u.ctx, "blob upload interrupted, resuming", "digest", u.desc.Digest, "offset", u.off, "err", err, "in", d)
		if werr := wait(u.ctx, d); werr != nil {
			return werr
		}
		// Where are we? A session the registry forgot starts over.
		if serr := u.status(); serr != nil {
			if !errors.Is(serr, errdefs.ErrNotFound) {
				return errors.Join(err, serr)
			}
			if serr := u.start(); serr != nil {
				return errors.Join(err, serr)
			}
		}
		if u.off > held {
			fails = 0 // the registry kept more than before: a flaky link, not a dead end
		}
		held = u.off
		if u.off > 0 || u.desc.Size > u.chunk {
			monolithic = false // a PUT cannot carry the rest without a Content-Range; chunks can
		}
		if u.progress != nil {
			u.progress(u.off)
		}
	}
}

// status asks the registry how much of the upload it holds.
func (u *upload) status() error {
	resp, err := u.c.do(u.ctx, &req{method: http.MethodGet, url: u.loc.String(),
		host: u.repo.Host, repo: u.repo.Name, scopes: u.scopes})
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusNoContent, http.StatusOK); err != nil {
		return err
	}
	drain(resp)
	return u.advance(resp, -1)
}

// advance takes the session's new location and offset from a response; want, if >= 0, is the
// offset we expect.
func (u *upload) advance(resp *http.Response, want int64) error {
	if l, err := resp.Location(); err == nil {
		if !sameOrigin(l, u.loc) {
			return fmt.Errorf("upload Location moved to another origin (%s): %w", l.Redacted(), errdefs.ErrInvalidArgument)
		}
		u.loc = l
	}
	if h := resp.Header.Get("Range"); h != "" {
		off, err := parseRangeEnd(h)
		if err != nil {
			return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		if off > u.desc.Size {
			return fmt.Errorf("the registry holds %d bytes of a %d-byte blob: %w", off, u.desc.Size, errdefs.ErrInvalidArgument)
		}
		u.off = off
	} else if want >= 0 {
		u.off = want
	}
	return nil
}

// chunks PATCHes the rest of the blob, a chunk at a time.
func (u *upload) chunks() error {
	for u.off < u.desc.Size {
		n := min(u.chunk, u.desc.Size-u.off)
		start := u.off
		resp, err := u.c.do(u.ctx, &req{method: http.MethodPatch, url: u.loc.String(), noRetry: true,
			header: http.Header{
				"Content-Type":  {"application/octet-stream"},
				"Content-Range": {strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(start+n-1, 10)},
			},
			body: func() (io.ReadCloser, error) { return u.open(start, n) }, length: n,
			host: u.repo.Host, repo: u.repo.Name, scopes: u.scopes})
		if err != nil {
			return err
		}
		if err := expect(resp, http.StatusAccepted, http.StatusNoContent); err != nil {
			return err
		}
		drain(resp)
		if err := u.advance(resp, start+n); err != nil {
			return err
		}
		if u.off != start+n {
			// the registry kept a different amount: go on from what it says it has
			slog.DebugContext(u.ctx, "registry acknowledged a different offset", "digest", u.desc.Digest, "sent_to", start+n, "holds", u.off)
		}
		if u.progress != nil {
			u.progress(u.off)
		}
	}
	return nil
}

// put closes the session with PUT ?digest=, carrying [off, off+n) of the blob.
func (u *upload) put(off, n int64) error {
	pu := *u.loc
	q := pu.Query()
	q.Set("digest", string(u.desc.Digest))
	pu.RawQuery = q.Encode()
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	r := &req{method: http.MethodPut, url: pu.String(), header: h, noRetry: true, length: n,
		body: func() (io.ReadCloser, error) { return u.open(off, n) },
		host: u.repo.Host, repo: u.repo.Name, scopes: u.scopes}
	resp, err := u.c.do(u.ctx, r)
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusCreated, http.StatusNoContent, http.StatusAccepted); err != nil {
		return err
	}
	drain(resp)
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != string(u.desc.Digest) {
		return fmt.Errorf("registry stored the blob as %s: %w", clip(h, 140), ErrDigestMismatch)
	}
	u.off = u.desc.Size
	if u.progress != nil {
		u.progress(u.off)
	}
	return nil
}

// open reads [off, off+n) of the blob from the source: seeking when it can, else skipping.
func (u *upload) open(off, n int64) (io.ReadCloser, error) {
	if n == 0 {
		return http.NoBody, nil
	}
	rc, err := u.src.Open(u.ctx, u.desc)
	if err != nil {
		return nil, &sourceError{fmt.Errorf("open source: %w", err)}
	}
	if off > 0 {
		if s, ok := rc.(io.Seeker); ok {
			_, err = s.Seek(off, io.SeekStart)
		} else {
			_, err = io.CopyN(io.Discard, rc, off)
		}
		if err != nil {
			rc.Close()
			return nil, &sourceError{fmt.Errorf("source: position at %d: %w", off, err)}
		}
	}
	var r io.Reader = io.LimitReader(rc, n)
	if u.progress != nil {
		r = &countingReader{r: r, base: off, fn: u.progress}
	}
	return readCloser{r, rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// countingReader reports progress about every 256 KiB read.
type countingReader struct {
	r        io.Reader
	base, n  int64
	reported int64
	fn       func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.reported >= 256<<10 {
		c.reported = c.n
		c.fn(c.base + c.n)
	}
	return n, err
}

// sourceError is a failure of the local Source: never worth a retry.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }
