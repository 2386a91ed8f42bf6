package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry/manifest"
	"github.com/berth-dev/berth/internal/registry/reference"
)

// manifestAccept lists the manifest types the client reads (Docker schema 1 is not among them).
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	manifest.MediaTypeDockerManifestList, manifest.MediaTypeDockerManifest,
}, ", ")

// Resolve finds the manifest ref names (by tag or digest) with a HEAD request, and falls back to
// a GET when the registry's answer lacks the digest, type or size.
func (c *Client) Resolve(ctx context.Context, ref reference.Image) (ocispec.Descriptor, error) {
	resp, err := c.do(ctx, &req{
		method: http.MethodHead, url: c.manifestURL(ref.Host, ref.Name, ref.Reference()),
		header: http.Header{"Accept": {manifestAccept}},
		host:   ref.Host, repo: ref.Name, scopes: []string{repoScope(ref.Name, "pull")},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	drain(resp)
	mt := manifest.BaseMediaType(resp.Header.Get("Content-Type"))
	d, derr := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	size, serr := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if derr != nil || serr != nil || !manifest.Known(mt) || (ref.Digest != "" && d.Algorithm() == ref.Digest.Algorithm() && d != ref.Digest) {
		desc, _, err := c.FetchManifest(ctx, ref)
		return desc, err
	}
	if ref.Digest != "" {
		d = ref.Digest
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

// FetchManifest GETs the manifest ref names and verifies it: against the reference's digest, or
// else against the registry's Docker-Content-Digest, and as a manifest of a known type.
func (c *Client) FetchManifest(ctx context.Context, ref reference.Image) (ocispec.Descriptor, []byte, error) {
	desc, data, err := c.fetchManifest(ctx, ref.Host, ref.Name, ref.Reference(), ref.Digest)
	if err != nil {
		return desc, nil, fmt.Errorf("fetch manifest %s: %w", ref, err)
	}
	return desc, data, nil
}

func (c *Client) fetchManifest(ctx context.Context, host, name, refStr string, want digest.Digest) (ocispec.Descriptor, []byte, error) {
	resp, err := c.do(ctx, &req{
		method: http.MethodGet, url: c.manifestURL(host, name, refStr),
		header: http.Header{"Accept": {manifestAccept}},
		host:   host, repo: name, scopes: []string{repoScope(name, "pull")},
	})
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	max := c.cfg.MaxManifestBytes
	if resp.ContentLength > max {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest is %d bytes, more than the %d accepted: %w", resp.ContentLength, max, errdefs.ErrInvalidArgument)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("read manifest: %w: %w", errdefs.ErrUnavailable, err)
	}
	if int64(len(data)) > max {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest is more than the %d bytes accepted: %w", max, errdefs.ErrInvalidArgument)
	}
	alg := digest.SHA256
	if want != "" {
		alg = want.Algorithm()
	}
	hdr := resp.Header.Get("Docker-Content-Digest")
	if want == "" && hdr != "" {
		if hd, err := reference.ParseDigest(hdr); err == nil {
			want, alg = hd, hd.Algorithm()
		}
	}
	got := alg.FromBytes(data)
	if want != "" && got != want {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest: expected %s, received content has digest %s: %w", want, got, ErrDigestMismatch)
	}
	parsed, err := manifest.Parse(resp.Header.Get("Content-Type"), data)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", got, err)
	}
	return ocispec.Descriptor{MediaType: parsed.MediaType, Digest: got, Size: int64(len(data))}, data, nil
}

// PushManifest PUTs a manifest under ref's tag, or else under its digest (which data must match).
// It returns the manifest's descriptor, after checking the registry's Docker-Content-Digest
// against it.
func (c *Client) PushManifest(ctx context.Context, ref reference.Image, mediaType string, data []byte) (ocispec.Descriptor, error) {
	alg := digest.SHA256
	if ref.Digest != "" {
		alg = ref.Digest.Algorithm()
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: alg.FromBytes(data), Size: int64(len(data))}
	if ref.Digest != "" && desc.Digest != ref.Digest {
		return desc, fmt.Errorf("push manifest %s: the manifest's digest is %s: %w", ref, desc.Digest, errdefs.ErrInvalidArgument)
	}
	target := ref.Tag
	if target == "" {
		target = string(desc.Digest)
	}
	if err := c.putManifest(ctx, ref.Host, ref.Name, target, desc, data); err != nil {
		return desc, fmt.Errorf("push manifest %s: %w", ref, err)
	}
	return desc, nil
}

func (c *Client) putManifest(ctx context.Context, host, name, target string, desc ocispec.Descriptor, data []byte) error {
	resp, err := c.do(ctx, &req{
		method: http.MethodPut, url: c.manifestURL(host, name, target),
		header: http.Header{"Content-Type": {desc.MediaType}},
		body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		length: int64(len(data)),
		host:   host, repo: name, scopes: []string{repoScope(name, "pull", "push")},
	})
	if err != nil {
		return err
	}
	if err := expect(resp, http.StatusCreated, http.StatusOK, http.StatusAccepted); err != nil {
		return err
	}
	drain(resp)
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		hd, err := digest.Parse(h)
		if err != nil || !hd.Algorithm().Available() {
			return fmt.Errorf("registry answered Docker-Content-Digest %q: %w", clip(h, 80), errdefs.ErrInvalidArgument)
		}
		if want := hd.Algorithm().FromBytes(data); hd != want {
			return fmt.Errorf("registry stored digest %s, the manifest sent has %s: %w", hd, want, ErrDigestMismatch)
		}
	}
	return nil
}

// Delete deletes the manifest ref names: by digest, or by tag where the registry allows it.
func (c *Client) Delete(ctx context.Context, ref reference.Image) error {
	resp, err := c.do(ctx, &req{
		method: http.MethodDelete, url: c.manifestURL(ref.Host, ref.Name, ref.Reference()),
		host: ref.Host, repo: ref.Name, scopes: []string{repoScope(ref.Name, "delete")},
	})
	if err == nil {
		err = expect(resp, http.StatusAccepted, http.StatusOK, http.StatusNoContent)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	drain(resp)
	return nil
}

// DeleteBlob deletes a blob of the repository repo names (its tag and digest are ignored).
func (c *Client) DeleteBlob(ctx context.Context, repo reference.Image, d digest.Digest) error {
	resp, err := c.do(ctx, &req{
		method: http.MethodDelete, url: c.blobURL(repo.Host, repo.Name, string(d)),
		host: repo.Host, repo: repo.Name, scopes: []string{repoScope(repo.Name, "delete")},
	})
	if err == nil {
		err = expect(resp, http.StatusAccepted, http.StatusOK, http.StatusNoContent)
	}
	if err != nil {
		return fmt.Errorf("delete blob %s in %s: %w", d, repo.Repository(), err)
	}
	drain(resp)
	return nil
}

// maxPages bounds how many Link headers a listing follows, against a registry that links in a
// circle.
const maxPages = 10000

// Tags lists the tags of the repository repo names, following the registry's pagination (Link
// headers). pageSize is the n of each request (0: let the registry choose).
func (c *Client) Tags(ctx context.Context, repo reference.Image, pageSize int) ([]string, error) {
	u, err := url.Parse(c.baseURL(repo.Host) + "/v2/" + repo.Name + "/tags/list")
	if err != nil {
		return nil, err
	}
	if pageSize > 0 {
		u.RawQuery = url.Values{"n": {strconv.Itoa(pageSize)}}.Encode()
	}
	var all []string
	err = c.paginate(ctx, repo, u, nil, func(body io.Reader, _ http.Header) error {
		var tl struct {
			Tags []string `json:"tags"`
		}
		if err := json.NewDecoder(io.LimitReader(body, 64<<20)).Decode(&tl); err != nil {
			return fmt.Errorf("tag list: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		all = append(all, tl.Tags...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo.Repository(), err)
	}
	return all, nil
}

// paginate GETs u and then each rel="next" Link, handing every page to fn.
func (c *Client) paginate(ctx context.Context, repo reference.Image, u *url.URL, header http.Header, fn func(io.Reader, http.Header) error) error {
	for range maxPages {
		resp, err := c.do(ctx, &req{
			method: http.MethodGet, url: u.String(), header: header,
			host: repo.Host, repo: repo.Name, scopes: []string{repoScope(repo.Name, "pull")},
		})
		if err != nil {
			return err
		}
		if err := expect(resp, http.StatusOK); err != nil {
			return err
		}
		err = fn(resp.Body, resp.Header)
		drain(resp)
		if err != nil {
			return err
		}
		next, err := nextLink(resp.Header.Values("Link"), u)
		if err != nil {
			return fmt.Errorf("Link header: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		if next == nil {
			return nil
		}
		if !sameOrigin(next, u) {
			return fmt.Errorf("Link header points to another origin (%s): %w", next.Redacted(), errdefs.ErrInvalidArgument)
		}
		u = next
	}
	return fmt.Errorf("more than %d pages: %w", maxPages, errdefs.ErrInvalidArgument)
}

// Referrers lists the manifests whose subject is the manifest subject, in the repository repo
// names, with artifactType ("" for all). A registry without the referrers API (404) is asked for
// the referrers tag schema's index instead (<alg>-<hex>), as the distribution-spec says.
func (c *Client) Referrers(ctx context.Context, repo reference.Image, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	u, err := url.Parse(c.baseURL(repo.Host) + "/v2/" + repo.Name + "/referrers/" + string(subject))
	if err != nil {
		return nil, err
	}
	if artifactType != "" {
		u.RawQuery = url.Values{"artifactType": {artifactType}}.Encode()
	}
	var out []ocispec.Descriptor
	err = c.paginate(ctx, repo, u, http.Header{"Accept": {ocispec.MediaTypeImageIndex}}, func(body io.Reader, h http.Header) error {
		var idx ocispec.Index
		if err := json.NewDecoder(io.LimitReader(body, c.cfg.MaxManifestBytes)).Decode(&idx); err != nil {
			return fmt.Errorf("referrers index: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		out = append(out, idx.Manifests...)
		return nil
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		out, err = c.referrersTag(ctx, repo, subject)
	}
	if err != nil {
		return nil, fmt.Errorf("referrers of %s in %s: %w", subject, repo.Repository(), err)
	}
	if artifactType != "" {
		// filtered here too: a registry may ignore the parameter (it then omits
		// OCI-Filters-Applied), and the tag schema fallback never filters
		out = slices.DeleteFunc(out, func(d ocispec.Descriptor) bool { return d.ArtifactType != artifactType })
	}
	return out, nil
}

func (c *Client) referrersTag(ctx context.Context, repo reference.Image, subject digest.Digest) ([]ocispec.Descriptor, error) {
	tag := string(subject.Algorithm()) + "-" + subject.Encoded()
	if len(tag) > reference.MaxTagLength {
		tag = tag[:reference.MaxTagLength]
	}
	_, data, err := c.fetchManifest(ctx, repo.Host, repo.Name, tag, "")
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("referrers tag %s: %w: %w", tag, err, errdefs.ErrInvalidArgument)
	}
	return idx.Manifests, nil
}
