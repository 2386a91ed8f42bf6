package registry

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specv1 "github.com/opencontainers/distribution-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The points where the anchors trip (issue 3), each as an assertion.

func TestReferrersEmptyIs200(t *testing.T) {
	h := newHarness(t, nil)
	img := randomImage(t, 1, 100)
	h.pushImage("app", "v1", img)
	for _, repo := range []string{"app", "never/pushed"} {
		r := h.do("GET", "/v2/"+repo+"/referrers/"+img.digest.String(), nil)
		wantStatus(t, "referrers of "+repo, r, http.StatusOK)
		if ct := r.h.Get("Content-Type"); ct != ocispec.MediaTypeImageIndex {
			t.Errorf("referrers: Content-Type %q", ct)
		}
		// an empty list, not null: clients index it
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &raw); err != nil {
			t.Fatal(err)
		}
		if string(raw["manifests"]) != "[]" || string(raw["schemaVersion"]) != "2" {
			t.Errorf("referrers of %s: %s, want an empty index", repo, r.body)
		}
	}
}

func TestSubjectAndReferrers(t *testing.T) {
	h := newHarness(t, nil)
	img := randomImage(t, 1, 100)
	h.pushImage("app", "v1", img)
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.digest, Size: int64(len(img.manifest))}
	var refs []image
	for i, at := range []string{"application/vnd.example.sig", "application/vnd.example.sbom"} {
		empty := []byte("{}")
		ref := makeImage(t, empty, [][]byte{[]byte(fmt.Sprintf("artifact %d", i))}, func(m *ocispec.Manifest) {
			m.ArtifactType = at
			m.Config.MediaType = ocispec.MediaTypeEmptyJSON
			m.Subject = &subject
			m.Annotations = map[string]string{"n": strconv.Itoa(i)}
		})
		r := h.pushImage("app", ref.digest.String(), ref)
		if got := r.h.Get("OCI-Subject"); got != img.digest.String() {
			t.Errorf("push with a subject: OCI-Subject %q, want %s", got, img.digest)
		}
		refs = append(refs, ref)
	}
	// a push without a subject says nothing about one
	if r := h.pushImage("app", "v2", randomImage(t, 1, 10)); r.h.Get("OCI-Subject") != "" {
		t.Errorf("push without a subject: OCI-Subject %q", r.h.Get("OCI-Subject"))
	}
	r := h.do("GET", "/v2/app/referrers/"+img.digest.String(), nil)
	wantStatus(t, "referrers", r, http.StatusOK)
	var idx ocispec.Index
	if err := json.Unmarshal(r.body, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 {
		t.Fatalf("referrers: %s", r.body)
	}
	for _, d := range idx.Manifests {
		i := slices.IndexFunc(refs, func(x image) bool { return x.digest == d.Digest })
		if i < 0 || d.Size != int64(len(refs[i].manifest)) || d.MediaType != ocispec.MediaTypeImageManifest || d.Annotations["n"] != strconv.Itoa(i) {
			t.Errorf("referrer descriptor %+v", d)
		}
	}
	r = h.do("GET", "/v2/app/referrers/"+img.digest.String()+"?artifactType=application/vnd.example.sbom", nil)
	wantStatus(t, "referrers filtered", r, http.StatusOK)
	idx = ocispec.Index{}
	_ = json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != refs[1].digest || idx.Manifests[0].ArtifactType != "application/vnd.example.sbom" {
		t.Errorf("referrers filtered by artifactType: %s", r.body)
	}
	if r.h.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("OCI-Filters-Applied %q", r.h.Get("OCI-Filters-Applied"))
	}
	// no fallback tags: the referrers API is there
	r = h.do("GET", "/v2/app/tags/list", nil)
	if strings.Contains(string(r.body), "sha256-") {
		t.Errorf("tags %s", r.body)
	}
	// deleting a referrer removes it from the list
	wantStatus(t, "delete referrer", h.do("DELETE", "/v2/app/manifests/"+refs[0].digest.String(), nil), http.StatusAccepted)
	r = h.do("GET", "/v2/app/referrers/"+img.digest.String(), nil)
	idx = ocispec.Index{}
	_ = json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != refs[1].digest {
		t.Errorf("referrers after a delete: %s", r.body)
	}
}

func TestTagsSortedPaginated(t *testing.T) {
	h := newHarness(t, nil)
	img := randomImage(t, 1, 10)
	h.pushImage("app", "z", img)
	want := []string{"1.0", "A", "_x", "a", "b-2", "v1", "v10", "v2", "z"}
	for _, tag := range []string{"v10", "b-2", "1.0", "v1", "A", "a", "_x", "v2"} { // not in order
		wantStatus(t, "tag "+tag, h.do("PUT", "/v2/app/manifests/"+tag, img.manifest, "Content-Type", ocispec.MediaTypeImageManifest), http.StatusCreated)
	}
	var list specv1.TagList
	r := h.do("GET", "/v2/app/tags/list", nil)
	wantStatus(t, "tags", r, http.StatusOK)
	_ = json.Unmarshal(r.body, &list)
	if list.Name != "app" || !slices.Equal(list.Tags, want) || r.h.Get("Link") != "" {
		t.Fatalf("tags: %s (Link %q), want %v", r.body, r.h.Get("Link"), want)
	}
	// walk the pages by the Link header
	var got []string
	next := "/v2/app/tags/list?n=4"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		r := h.do("GET", next, nil)
		wantStatus(t, "tags page", r, http.StatusOK)
		list = specv1.TagList{}
		_ = json.Unmarshal(r.body, &list)
		if len(list.Tags) > 4 {
			t.Fatalf("page of %d tags for n=4", len(list.Tags))
		}
		got = append(got, list.Tags...)
		next = ""
		if l := r.h.Get("Link"); l != "" {
			u, rel, ok := strings.Cut(l, ">;")
			if !ok || !strings.HasPrefix(u, "<") || !strings.Contains(rel, `rel="next"`) {
				t.Fatalf("Link %q", l)
			}
			next = u[1:]
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages gave %v, want %v", got, want)
	}
	// last without n, last past the end, n=0
	r = h.do("GET", "/v2/app/tags/list?last=b-2", nil)
	_ = json.Unmarshal(r.body, &list)
	if !slices.Equal(list.Tags, want[5:]) {
		t.Errorf("last=b-2: %v", list.Tags)
	}
	r = h.do("GET", "/v2/app/tags/list?last=zz&n=2", nil)
	list = specv1.TagList{}
	_ = json.Unmarshal(r.body, &list)
	if len(list.Tags) != 0 || r.h.Get("Link") != "" {
		t.Errorf("last past the end: %s, Link %q", r.body, r.h.Get("Link"))
	}
	wantError(t, "n=-1", h.do("GET", "/v2/app/tags/list?n=-1", nil), http.StatusBadRequest, codeUnsupported)
	wantError(t, "tags of an unknown repository", h.do("GET", "/v2/nope/tags/list", nil), http.StatusNotFound, codeNameUnknown)
}

func TestDeleteByTag(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("enabled=%v", enabled), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Delete.Tags = enabled })
			img := randomImage(t, 1, 10)
			h.pushImage("app", "v1", img)
			before := tree(t, h.root)
			r := h.do("DELETE", "/v2/app/manifests/v1", nil)
			if !enabled {
				wantError(t, "delete by tag", r, http.StatusMethodNotAllowed, codeUnsupported)
				sameTree(t, "refused delete", before, tree(t, h.root))
				wantStatus(t, "tag still there", h.do("GET", "/v2/app/manifests/v1", nil), http.StatusOK)
				return
			}
			wantStatus(t, "delete by tag", r, http.StatusAccepted)
			wantError(t, "deleted tag", h.do("GET", "/v2/app/manifests/v1", nil), http.StatusNotFound, codeManifestUnknown)
			wantStatus(t, "manifest by digest", h.do("GET", "/v2/app/manifests/"+img.digest.String(), nil), http.StatusOK)
			wantError(t, "delete a missing tag", h.do("DELETE", "/v2/app/manifests/v1", nil), http.StatusNotFound, codeManifestUnknown)
		})
	}
	h := newHarness(t, func(c *Config) { c.Delete.Disabled = true })
	img := randomImage(t, 1, 10)
	h.pushImage("app", "v1", img)
	wantError(t, "delete by digest, deletes disabled", h.do("DELETE", "/v2/app/manifests/"+img.digest.String(), nil), http.StatusMethodNotAllowed, codeUnsupported)
	wantError(t, "delete blob, deletes disabled", h.do("DELETE", "/v2/app/blobs/"+digest.FromBytes(img.layers[0]).String(), nil), http.StatusMethodNotAllowed, codeUnsupported)
}

// sha512 content keeps its algorithm everywhere: upload, commit, storage, manifest digests.
func TestSHA512(t *testing.T) {
	h := newHarness(t, nil)
	sum := func(b []byte) digest.Digest {
		s := sha512.Sum512(b)
		return digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(s[:]))
	}
	blob := randBytes(t, 3000)
	d := sum(blob)
	// monolithic
	r := h.do("POST", "/v2/app/blobs/uploads/?digest="+d.String(), blob)
	wantStatus(t, "sha512 monolithic", r, http.StatusCreated)
	if r.h.Get("Docker-Content-Digest") != d.String() || !strings.HasSuffix(r.h.Get("Location"), d.String()) {
		t.Errorf("sha512 monolithic: digest %q, location %q", r.h.Get("Docker-Content-Digest"), r.h.Get("Location"))
	}
	if _, err := os.Stat(filepath.Join(h.root, "blobs", "sha512", d.Encoded()[:2], d.Encoded())); err != nil {
		t.Errorf("sha512 blob not stored under its own algorithm: %v", err)
	}
	// chunked, into another repository
	other := randBytes(t, 5000)
	od := sum(other)
	loc := h.startUpload("other")
	wantStatus(t, "patch", h.do("PATCH", loc, other[:2000], "Content-Range", "0-1999", "Content-Type", "application/octet-stream"), http.StatusAccepted)
	r = h.do("PUT", loc+"?digest="+od.String(), other[2000:], "Content-Range", "2000-4999", "Content-Type", "application/octet-stream")
	wantStatus(t, "sha512 chunked commit", r, http.StatusCreated)
	if r.h.Get("Docker-Content-Digest") != od.String() {
		t.Errorf("sha512 chunked: Docker-Content-Digest %q", r.h.Get("Docker-Content-Digest"))
	}
	r = h.do("GET", "/v2/other/blobs/"+od.String(), nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, other) || r.h.Get("Docker-Content-Digest") != od.String() {
		t.Errorf("GET sha512 blob: %d, digest %q", r.status, r.h.Get("Docker-Content-Digest"))
	}
	// a sha512 digest of the wrong content
	wantError(t, "sha512 mismatch", h.do("POST", "/v2/app/blobs/uploads/?digest="+sum([]byte("x")).String(), blob), http.StatusBadRequest, codeDigestInvalid)
	// a manifest put by its sha512 digest is stored and answered under it
	cfg := []byte("{}")
	h.pushBlob("app", cfg)
	img := makeImage(t, cfg, nil, func(m *ocispec.Manifest) {
		m.Layers = []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(blob))}}
	})
	md := sum(img.manifest)
	r = h.do("PUT", "/v2/app/manifests/"+md.String(), img.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
	wantStatus(t, "put manifest by sha512", r, http.StatusCreated)
	if r.h.Get("Docker-Content-Digest") != md.String() || !strings.HasSuffix(r.h.Get("Location"), md.String()) {
		t.Errorf("put manifest by sha512: digest %q location %q", r.h.Get("Docker-Content-Digest"), r.h.Get("Location"))
	}
	for _, m := range []string{"GET", "HEAD"} {
		r = h.do(m, "/v2/app/manifests/"+md.String(), nil)
		if r.status != http.StatusOK || r.h.Get("Docker-Content-Digest") != md.String() || r.h.Get("Content-Length") != strconv.Itoa(len(img.manifest)) {
			t.Errorf("%s manifest by sha512: %d %v", m, r.status, r.h)
		}
	}
	// the sha256 digest of the same bytes names nothing
	wantError(t, "manifest by its sha256", h.do("GET", "/v2/app/manifests/"+img.digest.String(), nil), http.StatusNotFound, codeManifestUnknown)
}

func TestBlobRange(t *testing.T) {
	h := newHarness(t, nil)
	blob := randBytes(t, 1000)
	d := h.pushBlob("app", blob)
	path := "/v2/app/blobs/" + d.String()
	for _, c := range []struct {
		rng        string
		status     int
		start, end int // inclusive, for 206
	}{
		{"bytes=0-9", 206, 0, 9},
		{"bytes=990-", 206, 990, 999},
		{"bytes=-5", 206, 995, 999},
		{"bytes=500-5000", 206, 500, 999},
		{"bytes=999-999", 206, 999, 999},
		{"bytes=0-1,5-6", 200, 0, 999}, // several ranges: ignored, the whole blob
		{"items=0-1", 200, 0, 999},     // another unit: ignored
		{"bytes=1000-", 416, 0, 0},
		{"bytes=5-2", 416, 0, 0},
		{"bytes=-0", 416, 0, 0},
		{"bytes=x-y", 416, 0, 0},
	} {
		r := h.do("GET", path, nil, "Range", c.rng)
		if r.status != c.status {
			t.Errorf("Range %s: status %d, want %d", c.rng, r.status, c.status)
			continue
		}
		switch c.status {
		case 206:
			want := blob[c.start : c.end+1]
			cr := fmt.Sprintf("bytes %d-%d/1000", c.start, c.end)
			if !bytes.Equal(r.body, want) || r.h.Get("Content-Range") != cr || r.h.Get("Content-Length") != strconv.Itoa(len(want)) {
				t.Errorf("Range %s: %d bytes, Content-Range %q, Content-Length %q", c.rng, len(r.body), r.h.Get("Content-Range"), r.h.Get("Content-Length"))
			}
		case 200:
			if !bytes.Equal(r.body, blob) {
				t.Errorf("Range %s: not the whole blob", c.rng)
			}
		case 416:
			if r.h.Get("Content-Range") != "bytes */1000" || r.h.Get("Content-Length") != "0" || len(r.body) != 0 || r.h.Get("Docker-Content-Digest") != "" {
				t.Errorf("Range %s: 416 with headers %v and %d bytes", c.rng, r.h, len(r.body))
			}
		}
	}
	r := h.do("HEAD", path, nil)
	if r.status != 200 || r.h.Get("Accept-Ranges") != "bytes" || r.h.Get("Content-Length") != "1000" || r.h.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("HEAD blob: %d %v", r.status, r.h)
	}
	r = h.do("GET", path, nil, "If-None-Match", `"`+d.String()+`"`)
	if r.status != http.StatusNotModified || len(r.body) != 0 {
		t.Errorf("If-None-Match: %d", r.status)
	}
}

// An error response about a blob never carries that blob's length (a client would wait for a body
// that is not coming, or take the error for content).
func TestErrorHasNoBlobLength(t *testing.T) {
	h := newHarness(t, nil)
	blob := randBytes(t, 4321)
	d := h.pushBlob("app", blob)
	for _, c := range []struct{ what, method, path string }{
		{"HEAD in a repository without it", "HEAD", "/v2/other/blobs/" + d.String()},
		{"GET in a repository without it", "GET", "/v2/other/blobs/" + d.String()},
		{"HEAD of an unknown blob", "HEAD", "/v2/app/blobs/" + digest.FromString("x").String()},
		{"GET of an unknown blob", "GET", "/v2/app/blobs/" + digest.FromString("x").String()},
	} {
		r := h.do(c.method, c.path, nil)
		wantError(t, c.what, r, http.StatusNotFound, codeBlobUnknown)
		if r.h.Get("Content-Length") == "4321" {
			t.Errorf("%s: Content-Length is the blob's", c.what)
		}
	}
	// after a delete, HEAD and GET are errors with no trace of the blob
	wantStatus(t, "delete blob", h.do("DELETE", "/v2/app/blobs/"+d.String(), nil), http.StatusAccepted)
	for _, m := range []string{"HEAD", "GET"} {
		r := h.do(m, "/v2/app/blobs/"+d.String(), nil)
		wantError(t, m+" after delete", r, http.StatusNotFound, codeBlobUnknown)
		if r.h.Get("Content-Length") == "4321" {
			t.Errorf("%s after delete: Content-Length is the blob's", m)
		}
	}
}

func TestCrossRepoMount(t *testing.T) {
	h := newHarness(t, nil)
	blob := randBytes(t, 777)
	d := h.pushBlob("src/repo", blob)
	// with from
	r := h.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=src/repo", nil)
	wantStatus(t, "mount with from", r, http.StatusCreated)
	if r.h.Get("Location") != "/v2/dst/blobs/"+d.String() || r.h.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("mount: %v", r.h)
	}
	if r := h.do("GET", "/v2/dst/blobs/"+d.String(), nil); !bytes.Equal(r.body, blob) {
		t.Error("mounted blob does not read back")
	}
	// from a repository that does not have it: an upload session instead
	r = h.do("POST", "/v2/dst2/blobs/uploads/?mount="+d.String()+"&from=elsewhere", nil)
	wantStatus(t, "mount from a repository without the blob", r, http.StatusAccepted)
	if !strings.HasPrefix(r.h.Get("Location"), "/v2/dst2/blobs/uploads/") {
		t.Errorf("fallback upload Location %q", r.h.Get("Location"))
	}
	// without from: found anywhere (the default)
	wantStatus(t, "mount without from", h.do("POST", "/v2/dst3/blobs/uploads/?mount="+d.String(), nil), http.StatusCreated)
	// an unknown digest: an upload session
	wantStatus(t, "mount of an unknown blob", h.do("POST", "/v2/dst4/blobs/uploads/?mount="+digest.FromString("nope").String()+"&from=src/repo", nil), http.StatusAccepted)
	// hostile from
	for _, from := range []string{"../src/repo", "src/../../etc", "/abs", "SRC"} {
		before := tree(t, h.root)
		wantError(t, "mount from "+from, h.do("POST", "/v2/dst5/blobs/uploads/?mount="+d.String()+"&from="+from, nil), http.StatusBadRequest, codeNameInvalid)
		sameTree(t, "mount from "+from, before, tree(t, h.root))
	}
	wantError(t, "mount of a bad digest", h.do("POST", "/v2/dst5/blobs/uploads/?mount=sha256:xyz&from=src/repo", nil), http.StatusBadRequest, codeDigestInvalid)

	// mounting without from switched off
	h2 := newHarness(t, func(c *Config) { no := false; c.MountWithoutFrom = &no })
	d2 := h2.pushBlob("src", blob)
	wantStatus(t, "mount without from, disabled", h2.do("POST", "/v2/dst/blobs/uploads/?mount="+d2.String(), nil), http.StatusAccepted)
	wantError(t, "not mounted", h2.do("HEAD", "/v2/dst/blobs/"+d2.String(), nil), http.StatusNotFound, codeBlobUnknown)
}

func TestReadOnly(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	h := newHarness(t, func(c *Config) { c.Root = root })
	img := randomImage(t, 1, 100)
	h.pushImage("app", "v1", img)
	ro := newHarness(t, func(c *Config) { c.Root = root; c.ReadOnly = true })
	before := tree(t, root)
	wantStatus(t, "read-only GET manifest", ro.do("GET", "/v2/app/manifests/v1", nil), http.StatusOK)
	wantStatus(t, "read-only GET blob", ro.do("GET", "/v2/app/blobs/"+digest.FromBytes(img.layers[0]).String(), nil), http.StatusOK)
	wantStatus(t, "read-only tags", ro.do("GET", "/v2/app/tags/list", nil), http.StatusOK)
	blob := randBytes(t, 10)
	for _, c := range []struct{ method, path string }{
		{"POST", "/v2/app/blobs/uploads/"},
		{"POST", "/v2/app/blobs/uploads/?digest=" + digest.FromBytes(blob).String()},
		{"PUT", "/v2/app/manifests/v2"},
		{"DELETE", "/v2/app/manifests/" + img.digest.String()},
		{"DELETE", "/v2/app/blobs/" + digest.FromBytes(img.layers[0]).String()},
		{"PATCH", "/v2/app/blobs/uploads/0123456789abcdef0123456789abcdef"},
	} {
		wantError(t, "read-only "+c.method+" "+c.path, ro.do(c.method, c.path, blob), http.StatusMethodNotAllowed, codeUnsupported)
	}
	sameTree(t, "read-only registry", before, tree(t, root))
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, nil)
	h.pushImage("app", "v1", randomImage(t, 1, 100))
	h.do("GET", "/v2/app/manifests/v1", nil)
	h.do("GET", "/v2/app/manifests/nope", nil)
	r := h.do("GET", "/metrics", nil)
	wantStatus(t, "metrics", r, http.StatusOK)
	body := string(r.body)
	for _, want := range []string{
		`berth_registry_http_requests_total{code="200",method="GET",route="manifest"} 1`,
		`berth_registry_http_requests_total{code="404",method="GET",route="manifest"} 1`,
		`berth_registry_http_requests_total{code="201",method="PUT",route="manifest"} 1`,
		`berth_registry_http_request_duration_seconds_bucket{method="GET",route="manifest"`,
		`berth_registry_http_request_bytes_total{route="upload"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	off := newHarness(t, func(c *Config) { c.Metrics.Disabled = true })
	wantError(t, "metrics disabled", off.do("GET", "/metrics", nil), http.StatusNotFound, codeNameUnknown)
}

func TestBaseAndCatalog(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do("GET", "/v2/", nil)
	if r.status != 200 || string(r.body) != "{}" || r.h.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
		t.Errorf("/v2/: %d %q %v", r.status, r.body, r.h)
	}
	r = h.do("GET", "/v2/_catalog", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"repositories":[]`) {
		t.Errorf("empty catalog: %d %s", r.status, r.body)
	}
	img := randomImage(t, 1, 10)
	for _, repo := range []string{"b", "a/x", "c"} {
		h.pushImage(repo, "v1", img)
	}
	var list specv1.RepositoryList
	r = h.do("GET", "/v2/_catalog?n=2", nil)
	_ = json.Unmarshal(r.body, &list)
	if !slices.Equal(list.Repositories, []string{"a/x", "b"}) || !strings.Contains(r.h.Get("Link"), "last=b") {
		t.Errorf("catalog page: %s, Link %q", r.body, r.h.Get("Link"))
	}
	wantError(t, "POST /v2/", h.do("POST", "/v2/", nil), http.StatusMethodNotAllowed, codeUnsupported)
}

// Docker schema 2 manifests and manifest lists keep their media type.
func TestDockerMediaTypes(t *testing.T) {
	h := newHarness(t, nil)
	cfg, layer := []byte(`{"os":"linux"}`), randBytes(t, 50)
	h.pushBlob("app", cfg)
	h.pushBlob("app", layer)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"%s","size":%d}]}`,
		digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer))
	wantStatus(t, "put docker manifest", h.do("PUT", "/v2/app/manifests/v1", m, "Content-Type", "application/vnd.docker.distribution.manifest.v2+json"), http.StatusCreated)
	list := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}`,
		digest.FromString(m), len(m))
	wantStatus(t, "put docker list", h.do("PUT", "/v2/app/manifests/list", list, "Content-Type", "application/vnd.docker.distribution.manifest.list.v2+json"), http.StatusCreated)
	for tag, mt := range map[string]string{"v1": "application/vnd.docker.distribution.manifest.v2+json", "list": "application/vnd.docker.distribution.manifest.list.v2+json"} {
		r := h.do("GET", "/v2/app/manifests/"+tag, nil)
		if r.status != 200 || r.h.Get("Content-Type") != mt {
			t.Errorf("GET %s: %d Content-Type %q", tag, r.status, r.h.Get("Content-Type"))
		}
	}
	// an index whose child is missing
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":10}]}`, digest.FromString("absent"))
	wantError(t, "index with a missing child", h.do("PUT", "/v2/app/manifests/idx", idx, "Content-Type", ocispec.MediaTypeImageIndex), http.StatusBadRequest, codeManifestBlobUnknown)
}
