package registry

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Hostile input gets a clear spec error and writes nothing.

// hostile runs a request that must fail with status and code and leave the storage as it was.
func (h *harness) hostile(what string, status int, code string, method, path string, body any, hdr ...string) {
	h.t.Helper()
	before := tree(h.t, h.root)
	r := h.do(method, path, body, hdr...)
	wantError(h.t, what, r, status, code)
	sameTree(h.t, what, before, tree(h.t, h.root))
}

func TestHostileNames(t *testing.T) {
	h := newHarness(t, nil)
	img := randomImage(t, 1, 10)
	h.pushImage("app", "v1", img)
	d := img.digest.String()
	for _, name := range []string{"UPPER", "a//b", "a/../b", "a/./b", "..", ".", "_x", "a/_blobs", "a.", "a-", "a___b", "a b", "a:b",
		strings.Repeat("a", 256), strings.Repeat("ab/", 100) + "c"} {
		p := "/v2/" + strings.ReplaceAll(name, " ", "%20")
		h.hostile("upload into "+name, 400, codeNameInvalid, "POST", p+"/blobs/uploads/", nil)
		h.hostile("monolithic upload into "+name, 400, codeNameInvalid, "POST", p+"/blobs/uploads/?digest="+digestOf([]byte("x")), "x")
		h.hostile("put manifest into "+name, 400, codeNameInvalid, "PUT", p+"/manifests/v1", img.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
		h.hostile("get manifest of "+name, 400, codeNameInvalid, "GET", p+"/manifests/"+d, nil)
		h.hostile("get blob of "+name, 400, codeNameInvalid, "GET", p+"/blobs/"+d, nil)
		h.hostile("tags of "+name, 400, codeNameInvalid, "GET", p+"/tags/list", nil)
		h.hostile("referrers of "+name, 400, codeNameInvalid, "GET", p+"/referrers/"+d, nil)
	}
}

// Names that climb out of the repository tree, sent byte for byte (no client normalisation).
func TestPathTraversal(t *testing.T) {
	h := newHarness(t, nil)
	img := randomImage(t, 1, 10)
	h.pushImage("app", "v1", img)
	parent := filepath.Dir(h.root)
	outside := func() []string {
		ents, _ := os.ReadDir(parent)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	wantOutside := fmt.Sprint(outside())
	before := tree(t, h.root)
	d := img.digest.String()
	for _, c := range []struct {
		method, target string
		status         int
		code           string
	}{
		{"POST", "/v2/../../evil/blobs/uploads/", 400, codeNameInvalid},
		{"POST", "/v2/app/../../../evil/blobs/uploads/", 400, codeNameInvalid},
		{"PUT", "/v2/../app/manifests/v1", 400, codeNameInvalid},
		{"GET", "/v2/app/../../blobs/blobs/" + d, 400, codeNameInvalid},
		{"GET", "/v2//etc/blobs/" + d, 400, codeNameInvalid},
		{"GET", "/v2/app/manifests/..", 404, codeManifestUnknown},
		{"PUT", "/v2/app/manifests/..", 400, codeManifestInvalid},
		{"PUT", "/v2/app/manifests/...", 400, codeManifestInvalid},
		{"GET", "/v2/app/blobs/sha256:../../../../etc/passwd", 404, codeNameUnknown}, // routed from the end: no endpoint "etc"
		{"GET", "/v2/app/blobs/sha256:..%2f..%2fetc", 400, codeDigestInvalid},
		{"GET", "/v2/app/blobs/sha256%3A" + img.digest.Encoded() + "%2F..", 400, codeDigestInvalid},
		{"POST", "/v2/a/%2e%2e/%2e%2e/evil/blobs/uploads/", 400, codeNameInvalid},
		{"POST", "/v2/a%2fb/blobs/uploads/", 400, codeNameInvalid},
		{"POST", "/v2/a%2F..%2F..%2Fevil/blobs/uploads/", 400, codeNameInvalid},
		{"PATCH", "/v2/app/blobs/uploads/../../../repos/app", 404, codeNameUnknown},
		{"PATCH", "/v2/app/blobs/uploads/..%2F..%2F..%2Frepos", 404, codeBlobUploadUnknown},
		{"PATCH", "/v2/app/blobs/uploads/..", 404, codeBlobUploadUnknown},
		{"GET", "/v2/app/blobs/uploads/0123456789abcdef0123456789abcdeF", 404, codeBlobUploadUnknown},
		{"DELETE", "/v2/app/blobs/uploads/" + strings.Repeat("a", 31), 404, codeBlobUploadUnknown},
		{"GET", "/v2/app/referrers/sha256:..", 400, codeDigestInvalid},
	} {
		r := rawRequest(t, h.url, c.method, c.target)
		wantError(t, c.method+" "+c.target, r, c.status, c.code)
	}
	sameTree(t, "path traversal", before, tree(t, h.root))
	// an escaped ':' is only an escape: the manifest is found
	if r := rawRequest(t, h.url, "GET", "/v2/app/manifests/sha256%3A"+img.digest.Encoded()); r.status != http.StatusOK || !bytes.Equal(r.body, img.manifest) {
		t.Errorf("manifest by a digest with an escaped colon: %d", r.status)
	}
	if got := fmt.Sprint(outside()); got != wantOutside {
		t.Errorf("written next to the storage root: %s, was %s", got, wantOutside)
	}
}

func TestHostileTags(t *testing.T) {
	h := newHarness(t, nil)
	img := randomImage(t, 1, 10)
	h.pushImage("app", "v1", img)
	ct := []string{"Content-Type", ocispec.MediaTypeImageManifest}
	for _, tag := range []string{".x", "-x", strings.Repeat("t", 129), "a%20b", "t!", "%C3%A4"} {
		h.hostile("put tag "+tag, 400, codeManifestInvalid, "PUT", "/v2/app/manifests/"+tag, img.manifest, ct...)
		h.hostile("get tag "+tag, 404, codeManifestUnknown, "GET", "/v2/app/manifests/"+tag, nil)
	}
	h.hostile("put with a bad ?tag=", 400, codeManifestInvalid, "PUT", "/v2/app/manifests/"+img.digest.String()+"?tag=ok&tag=.bad", img.manifest, ct...)
	// a 128-character tag is fine
	long := strings.Repeat("t", 128)
	wantStatus(t, "128-character tag", h.do("PUT", "/v2/app/manifests/"+long, img.manifest, ct...), http.StatusCreated)
}

func TestHostileDigests(t *testing.T) {
	h := newHarness(t, nil)
	blob := []byte("hello")
	good := digest.FromBytes(blob)
	for _, d := range []string{
		"sha256:xyz",
		"sha256:" + strings.ToUpper(good.Encoded()),
		"sha256:" + good.Encoded() + "00",
		"sha256:" + good.Encoded()[:63],
		"md5:5d41402abc4b2a76b9719d911017c592", // well formed, but not an algorithm we verify
		"sha384:" + strings.Repeat("a", 96),
		"sha256",
		":" + good.Encoded(),
		"SHA256:" + good.Encoded(),
	} {
		h.hostile("blob GET "+d, 400, codeDigestInvalid, "GET", "/v2/app/blobs/"+d, nil)
		h.hostile("monolithic push "+d, 400, codeDigestInvalid, "POST", "/v2/app/blobs/uploads/?digest="+d, blob)
		if strings.Contains(d, ":") { // without one it is a tag
			h.hostile("manifest GET "+d, 400, codeDigestInvalid, "GET", "/v2/app/manifests/"+d, nil)
		}
		h.hostile("referrers "+d, 400, codeDigestInvalid, "GET", "/v2/app/referrers/"+d, nil)
	}
	// content that does not match its digest
	h.hostile("monolithic mismatch", 400, codeDigestInvalid, "POST", "/v2/app/blobs/uploads/?digest="+good.String(), "hellO")
	h.hostile("monolithic, body shorter than declared", 400, codeDigestInvalid, "POST", "/v2/app/blobs/uploads/?digest="+good.String(), "")

	// a chunked upload committed with the wrong digest: 400, and the upload is gone with its data
	before := tree(t, h.root)
	loc := h.startUpload("app")
	wantStatus(t, "patch", h.do("PATCH", loc, blob, "Content-Range", "0-4"), http.StatusAccepted)
	wantError(t, "commit mismatch", h.do("PUT", loc+"?digest="+digest.FromString("other").String(), nil), 400, codeDigestInvalid)
	sameTree(t, "commit mismatch", before, tree(t, h.root))
	wantError(t, "upload after a failed commit", h.do("GET", loc, nil), 404, codeBlobUploadUnknown)
	// commit without a digest, or with a malformed one: the upload stays
	loc = h.startUpload("app")
	wantStatus(t, "patch", h.do("PATCH", loc, blob, "Content-Range", "0-4"), http.StatusAccepted)
	wantError(t, "commit without digest", h.do("PUT", loc, nil), 400, codeDigestInvalid)
	wantError(t, "commit with a malformed digest", h.do("PUT", loc+"?digest=sha256:zz", nil), 400, codeDigestInvalid)
	r := h.do("GET", loc, nil)
	if r.status != http.StatusNoContent || r.h.Get("Range") != "0-4" {
		t.Errorf("upload after refused commits: %d Range %q", r.status, r.h.Get("Range"))
	}
	// a manifest put by a digest that is not its own
	img := randomImage(t, 1, 10)
	h.pushBlob("app", img.config)
	h.pushBlob("app", img.layers[0])
	h.hostile("manifest digest mismatch", 400, codeDigestInvalid, "PUT", "/v2/app/manifests/"+good.String(), img.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
	h.hostile("manifest sha512 digest of other content", 400, codeDigestInvalid, "PUT", "/v2/app/manifests/"+digest.SHA512.FromString("x").String(), img.manifest, "Content-Type", ocispec.MediaTypeImageManifest)
}

func TestHostileManifests(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxManifestBytes = 64 << 10 })
	cfg := []byte(`{"os":"linux"}`)
	layer := randBytes(t, 100)
	h.pushBlob("app", cfg)
	h.pushBlob("app", layer)
	h.pushBlob("other", []byte("only elsewhere"))
	cd, ld := digest.FromBytes(cfg), digest.FromBytes(layer)
	desc := func(mt string, d digest.Digest, size int) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, d, size)
	}
	oci := func(config, layers string) string {
		return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + config + `,"layers":[` + layers + `]}`
	}
	goodCfg := desc(ocispec.MediaTypeImageConfig, cd, len(cfg))
	goodLayer := desc(ocispec.MediaTypeImageLayer, ld, len(layer))
	ociCT := ocispec.MediaTypeImageManifest
	deep := `{"schemaVersion":2,"annotations":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	for _, c := range []struct {
		what, ct, body string
		code           string
	}{
		{"empty", ociCT, "", codeManifestInvalid},
		{"not JSON", ociCT, "hello", codeManifestInvalid},
		{"a JSON array", ociCT, "[1,2]", codeManifestInvalid},
		{"truncated", ociCT, oci(goodCfg, goodLayer)[:50], codeManifestInvalid},
		{"trailing garbage", ociCT, oci(goodCfg, goodLayer) + "x", codeManifestInvalid},
		{"deeply nested", ociCT, deep, codeManifestInvalid},
		{"schema 1", "application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1,"fsLayers":[]}`, codeManifestInvalid},
		{"schemaVersion 3", ociCT, `{"schemaVersion":3,"config":` + goodCfg + `}`, codeManifestInvalid},
		{"schemaVersion as a string", ociCT, `{"schemaVersion":"2","config":` + goodCfg + `}`, codeManifestInvalid},
		{"no config", ociCT, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`, codeManifestInvalid},
		{"config digest malformed", ociCT, oci(desc(ocispec.MediaTypeImageConfig, "sha256:abc", 2), ""), codeManifestInvalid},
		{"negative size", ociCT, oci(desc(ocispec.MediaTypeImageConfig, cd, -1), ""), codeManifestInvalid},
		{"layer without media type", ociCT, oci(goodCfg, desc("", ld, len(layer))), codeManifestInvalid},
		{"media type not type/subtype", ociCT, oci(goodCfg, desc("tar", ld, len(layer))), codeManifestInvalid},
		{"Content-Type contradicts the body", ocispec.MediaTypeImageIndex, oci(goodCfg, goodLayer), codeManifestInvalid},
		{"unknown Content-Type", "text/plain", oci(goodCfg, goodLayer), codeManifestInvalid},
		{"an index with layers", ocispec.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[],"layers":[]}`, codeManifestInvalid},
		{"embedded data that does not match", ociCT, oci(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+cd.String()+`","size":14,"data":"AAAAAAAAAAAAAAAAAAA="}`, ""), codeManifestInvalid},
		{"a URL that is not http", ociCT, oci(goodCfg, `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"`+ld.String()+`","size":100,"urls":["file:///etc/passwd"]}`), codeManifestInvalid},
		{"a layer of the wrong size", ociCT, oci(goodCfg, desc(ocispec.MediaTypeImageLayer, ld, 99)), codeManifestInvalid},
		{"a missing layer", ociCT, oci(goodCfg, desc(ocispec.MediaTypeImageLayer, digest.FromString("missing"), 7)), codeManifestBlobUnknown},
		{"a layer held by another repository only", ociCT, oci(goodCfg, desc(ocispec.MediaTypeImageLayer, digest.FromString("only elsewhere"), 14)), codeManifestBlobUnknown},
		{"a subject that is malformed", ociCT, strings.TrimSuffix(oci(goodCfg, goodLayer), "}") + `,"subject":{"mediaType":"x/y","digest":"sha256:1","size":1}}`, codeManifestInvalid},
	} {
		h.hostile(c.what, 400, c.code, "PUT", "/v2/app/manifests/v1", c.body, "Content-Type", c.ct)
	}
	// oversized, with a Content-Length and streamed without one
	big := oci(goodCfg, goodLayer)
	big = strings.TrimSuffix(big, "}") + `,"annotations":{"pad":"` + strings.Repeat("x", 64<<10) + `"}}`
	h.hostile("oversized", http.StatusRequestEntityTooLarge, codeManifestInvalid, "PUT", "/v2/app/manifests/v1", big, "Content-Type", ociCT)
	h.hostile("oversized, streamed", http.StatusRequestEntityTooLarge, codeManifestInvalid, "PUT", "/v2/app/manifests/v1", io.MultiReader(strings.NewReader(big)), "Content-Type", ociCT)
	// and the well-formed one is accepted
	wantStatus(t, "good manifest", h.do("PUT", "/v2/app/manifests/v1", oci(goodCfg, goodLayer), "Content-Type", ociCT), http.StatusCreated)
}

// uploadSize reads an upload's offset through the API.
func (h *harness) uploadSize(loc string) int64 {
	h.t.Helper()
	r := h.do("GET", loc, nil)
	wantStatus(h.t, "upload status", r, http.StatusNoContent)
	rng := r.h.Get("Range")
	_, end, ok := strings.Cut(rng, "-")
	n, err := strconv.ParseInt(end, 10, 64)
	if !ok || err != nil || !strings.HasPrefix(rng, "0-") {
		h.t.Fatalf("upload status Range %q", rng)
	}
	if n == 0 {
		// "0-0" is what an empty upload answers; one byte would be the same: ask the disk
		fi, err := os.Stat(filepath.Join(h.root, "uploads", filepath.Base(loc), "data"))
		if err != nil {
			h.t.Fatal(err)
		}
		return fi.Size()
	}
	return n + 1
}

func TestBogusContentRange(t *testing.T) {
	h := newHarness(t, nil)
	loc := h.startUpload("app")
	chunk := randBytes(t, 10)
	for _, cr := range []string{"abc", "5-2", "-1-3", "1-", "-", "0-99999999999999999999", "0x0-0x9", "0 - 9x", "bytes */10"} {
		h.hostile("Content-Range "+cr, 400, codeBlobUploadInvalid, "PATCH", loc, chunk, "Content-Range", cr)
	}
	h.hostile("Content-Range longer than the body", 400, codeSizeInvalid, "PATCH", loc, chunk, "Content-Range", "0-19")
	h.hostile("Content-Range shorter than the body", 400, codeSizeInvalid, "PATCH", loc, chunk, "Content-Range", "0-4")
	if n := h.uploadSize(loc); n != 0 {
		t.Fatalf("upload grew to %d bytes on refused chunks", n)
	}
	// the upload is still usable
	wantStatus(t, "good chunk", h.do("PATCH", loc, chunk, "Content-Range", "0-9"), http.StatusAccepted)
	r := h.do("PUT", loc+"?digest="+digestOf(chunk), nil)
	wantStatus(t, "commit", r, http.StatusCreated)
}

// An out-of-order chunk gets 416 with the upload's real offset, changes nothing, and the upload
// goes on from there.
func TestOutOfOrderChunk(t *testing.T) {
	h := newHarness(t, nil)
	data := randBytes(t, 30)
	loc := h.startUpload("app")
	r := h.do("PATCH", loc, data[:10], "Content-Range", "0-9")
	wantStatus(t, "first chunk", r, http.StatusAccepted)
	if r.h.Get("Range") != "0-9" {
		t.Errorf("Range after the first chunk: %q", r.h.Get("Range"))
	}
	for _, cr := range []string{"20-29", "5-14", "0-9", "11-20"} {
		a, b, _ := strings.Cut(cr, "-")
		ai, _ := strconv.Atoi(a)
		bi, _ := strconv.Atoi(b)
		body := randBytes(t, bi-ai+1)
		before := tree(t, h.root)
		r := h.do("PATCH", loc, body, "Content-Range", cr)
		wantError(t, "chunk "+cr, r, http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid)
		if r.h.Get("Range") != "0-9" || r.h.Get("Location") != loc {
			t.Errorf("416 for %s: Range %q Location %q, want 0-9 and %s", cr, r.h.Get("Range"), r.h.Get("Location"), loc)
		}
		sameTree(t, "chunk "+cr, before, tree(t, h.root))
	}
	// a chunk that claims to start far beyond the end, with a small body: no sparse file appears
	r = h.do("PATCH", loc, data[10:20], "Content-Range", "999999999999999990-999999999999999999")
	wantError(t, "chunk far beyond the end", r, http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(h.root, "uploads", filepath.Base(loc), "data"), &st); err != nil || st.Size != 10 {
		t.Fatalf("upload data after a far chunk: size %d, err %v", st.Size, err)
	}
	// the final PUT out of order is refused the same way
	r = h.do("PUT", loc+"?digest="+digestOf(data), data[20:], "Content-Range", "20-29")
	wantError(t, "final chunk out of order", r, http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid)
	if h.uploadSize(loc) != 10 {
		t.Fatal("the refused final chunk changed the upload")
	}
	wantStatus(t, "next chunk", h.do("PATCH", loc, data[10:20], "Content-Range", "10-19"), http.StatusAccepted)
	r = h.do("PUT", loc+"?digest="+digestOf(data), data[20:], "Content-Range", "20-29")
	wantStatus(t, "final chunk", r, http.StatusCreated)
	if got := h.do("GET", "/v2/app/blobs/"+digestOf(data), nil); !bytes.Equal(got.body, data) {
		t.Fatal("the blob is not the chunks in order")
	}
}

// A chunk whose body ends before its Content-Length leaves the upload as it was.
func TestTruncatedChunk(t *testing.T) {
	h := newHarness(t, nil)
	loc := h.startUpload("app")
	wantStatus(t, "first chunk", h.do("PATCH", loc, "0123456789", "Content-Range", "0-9"), http.StatusAccepted)
	addr := strings.TrimPrefix(h.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Range: 10-109\r\nContent-Length: 100\r\n\r\n%s", loc, addr, strings.Repeat("z", 50))
	conn.(*net.TCPConn).CloseWrite()
	// the server answers (or just closes) once it sees the body end early
	_, _ = http.ReadResponse(bufio.NewReader(conn), nil)
	conn.Close()
	if n := h.uploadSize(loc); n != 10 {
		t.Fatalf("a truncated chunk left the upload at %d bytes, want 10", n)
	}
	rest := randBytes(t, 5)
	wantStatus(t, "chunk after the truncated one", h.do("PATCH", loc, rest, "Content-Range", "10-14"), http.StatusAccepted)
	want := append([]byte("0123456789"), rest...)
	wantStatus(t, "commit", h.do("PUT", loc+"?digest="+digestOf(want), nil), http.StatusCreated)
}

// Many tiny chunks: the upload stays one file of the right size, and commits.
func TestManyChunks(t *testing.T) {
	h := newHarness(t, nil)
	n := 2000
	if testing.Short() {
		n = 300
	}
	data := randBytes(t, n*3)
	loc := h.startUpload("app")
	for i := range n {
		r := h.do("PATCH", loc, data[i*3:i*3+3], "Content-Range", fmt.Sprintf("%d-%d", i*3, i*3+2))
		if r.status != http.StatusAccepted {
			t.Fatalf("chunk %d: %d %s", i, r.status, r.body)
		}
	}
	ents, err := os.ReadDir(filepath.Join(h.root, "uploads", filepath.Base(loc)))
	if err != nil || len(ents) != 2 {
		t.Fatalf("upload directory after %d chunks: %v entries, %v", n, len(ents), err)
	}
	r := h.do("PUT", loc+"?digest="+digestOf(data), nil)
	wantStatus(t, "commit", r, http.StatusCreated)
	if got := h.do("GET", "/v2/app/blobs/"+digestOf(data), nil); !bytes.Equal(got.body, data) {
		t.Fatal("blob of many chunks does not read back")
	}
	if ents, _ := os.ReadDir(filepath.Join(h.root, "uploads")); len(ents) != 0 {
		t.Errorf("%d uploads left after the commit", len(ents))
	}
}

func TestUploadBelongsToItsRepository(t *testing.T) {
	h := newHarness(t, nil)
	loc := h.startUpload("a")
	other := strings.Replace(loc, "/v2/a/", "/v2/b/", 1)
	h.hostile("PATCH through another repository", 404, codeBlobUploadUnknown, "PATCH", other, "xyz", "Content-Range", "0-2")
	h.hostile("PUT through another repository", 404, codeBlobUploadUnknown, "PUT", other+"?digest="+digestOf(nil), nil)
	h.hostile("DELETE through another repository", 404, codeBlobUploadUnknown, "DELETE", other, nil)
	wantStatus(t, "cancel", h.do("DELETE", loc, nil), http.StatusNoContent)
	wantError(t, "cancelled upload", h.do("PATCH", loc, "x"), 404, codeBlobUploadUnknown)
	h.hostile("PUT to a blob URL", 405, codeUnsupported, "PUT", "/v2/a/blobs/"+digestOf(nil), nil)
	h.hostile("POST to a manifest URL", 405, codeUnsupported, "POST", "/v2/a/manifests/v1", nil)
	h.hostile("unknown endpoint", 404, codeNameUnknown, "GET", "/v2/a/other/thing", nil)
}
