package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// blob is content to push, with its descriptor.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

// image is a generated image: layers of random bytes (incompressible, as real layers are after
// gzip), a config naming them, and the manifest.
type image struct {
	layers   []blob
	config   blob
	manifest []byte
	bytes    int64 // layer bytes: what MB/s is computed from
}

func newBlob(mediaType string, data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:])), Size: int64(len(data))}, data: data}
}

// genImage makes an image of n layers totalling about total bytes. seed makes each round's content
// new, so that a push uploads every byte instead of finding the blobs already there.
func genImage(seed uint64, n int, total int64) (*image, error) {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	rng := rand.NewChaCha8(key)
	img := &image{}
	per := total / int64(n)
	var diffIDs []digest.Digest
	for range n {
		data := make([]byte, per)
		_, _ = rng.Read(data)
		b := newBlob(ocispec.MediaTypeImageLayer, data)
		img.layers = append(img.layers, b)
		diffIDs = append(diffIDs, b.desc.Digest)
		img.bytes += per
	}
	cfg, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	if err != nil {
		return nil, err
	}
	img.config = newBlob(ocispec.MediaTypeImageConfig, cfg)
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: img.config.desc}
	for _, l := range img.layers {
		m.Layers = append(m.Layers, l.desc)
	}
	if img.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return img, nil
}

// client speaks the distribution-spec API with plain net/http, the way registry clients push and
// pull: blobs in parallel (jobs at a time, go-containerregistry's default is 4), each pushed as a
// HEAD (skip if present), POST to open an upload, one PATCH streaming the bytes and a PUT with the
// digest; a pull fetches the manifest, then the blobs in parallel, verifying each digest.
type client struct {
	base string
	http *http.Client
	jobs int
}

func newClient(base string, jobs int) *client {
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * jobs, DisableCompression: true,
		WriteBufferSize: 256 << 10, ReadBufferSize: 256 << 10}
	return &client{base: base, http: &http.Client{Transport: tr}, jobs: jobs}
}

func (c *client) close() { c.http.CloseIdleConnections() }

func (c *client) do(ctx context.Context, method, u string, body []byte, hdr map[string]string, want int) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, u, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	return resp, nil
}

// location resolves an upload's Location header against the request URL.
func location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: no Location header", resp.Request.Method, resp.Request.URL)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("location header %q: %w", loc, err)
	}
	return u, nil
}

func (c *client) pushBlob(ctx context.Context, repo string, b blob) error {
	burl := c.base + "/v2/" + repo + "/blobs/" + b.desc.Digest.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, burl, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	resp, err = c.do(ctx, http.MethodPost, c.base+"/v2/"+repo+"/blobs/uploads/", nil, nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	resp.Body.Close()
	u, err := location(resp)
	if err != nil {
		return err
	}
	resp, err = c.do(ctx, http.MethodPatch, u.String(), b.data, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusAccepted)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if u, err = location(resp); err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", b.desc.Digest.String())
	u.RawQuery = q.Encode()
	resp, err = c.do(ctx, http.MethodPut, u.String(), nil, nil, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// parallel runs f over items, jobs at a time, and returns the first error.
func parallel[T any](ctx context.Context, jobs int, items []T, f func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, it); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

func (c *client) push(ctx context.Context, repo, tag string, img *image) error {
	blobs := append([]blob{img.config}, img.layers...)
	if err := parallel(ctx, c.jobs, blobs, func(ctx context.Context, b blob) error { return c.pushBlob(ctx, repo, b) }); err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPut, c.base+"/v2/"+repo+"/manifests/"+tag, img.manifest,
		map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (c *client) pullBlob(ctx context.Context, repo string, d ocispec.Descriptor) error {
	resp, err := c.do(ctx, http.MethodGet, c.base+"/v2/"+repo+"/blobs/"+d.Digest.String(), nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	h := sha256.New()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	n, err := io.CopyBuffer(h, resp.Body, *bp)
	if err != nil {
		return fmt.Errorf("GET blob %s: %w", d.Digest, err)
	}
	if n != d.Size {
		return fmt.Errorf("GET blob %s: %d bytes, the manifest says %d", d.Digest, n, d.Size)
	}
	if got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))); got != d.Digest {
		return fmt.Errorf("GET blob %s: content is %s", d.Digest, got)
	}
	return nil
}

var manifestAccept = ocispec.MediaTypeImageManifest + ", " + ocispec.MediaTypeImageIndex +
	", application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

// pull fetches an image and returns its layer bytes.
func (c *client) pull(ctx context.Context, repo, tag string) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, c.base+"/v2/"+repo+"/manifests/"+tag, nil, map[string]string{"Accept": manifestAccept}, http.StatusOK)
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if dg := resp.Header.Get("Docker-Content-Digest"); dg != "" && digest.FromBytes(data).String() != dg {
		return 0, fmt.Errorf("manifest %s:%s: Docker-Content-Digest %s does not match the content", repo, tag, dg)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, fmt.Errorf("manifest %s:%s: %w", repo, tag, err)
	}
	if len(m.Layers) == 0 {
		return 0, errors.New("manifest " + repo + ":" + tag + " has no layers")
	}
	descs := append([]ocispec.Descriptor{m.Config}, m.Layers...)
	var total int64
	for _, l := range m.Layers {
		total += l.Size
	}
	err = parallel(ctx, c.jobs, descs, func(ctx context.Context, d ocispec.Descriptor) error { return c.pullBlob(ctx, repo, d) })
	return total, err
}

func mbps(bytes int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / secs
}

func itoa(i int) string { return strconv.Itoa(i) }
