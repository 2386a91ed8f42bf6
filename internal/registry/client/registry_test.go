package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/registry/reference"
)

var (
	linuxAMD64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	linuxARM64 = ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

// progressLog collects progress reports.
type progressLog struct {
	mu   sync.Mutex
	last map[string]Progress
	n    int
}

func (p *progressLog) fn(pr Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]Progress{}
	}
	p.last[string(pr.Descriptor.Digest)] = pr
	p.n++
}

func (p *progressLog) final(d ocispec.Descriptor) Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[string(d.Digest)]
}

// checkPulled asserts that dst holds exactly what src holds for the image.
func checkPulled(t *testing.T, src, dst *memStore, ti testImage) {
	t.Helper()
	for _, d := range append(ti.blobs(), ti.manifest) {
		if !bytes.Equal(dst.bytes(d.Digest), src.bytes(d.Digest)) {
			t.Errorf("pulled %s (%s) differs from what was pushed (%d vs %d bytes)", d.Digest, d.MediaType, len(dst.bytes(d.Digest)), len(src.bytes(d.Digest)))
		}
	}
}

func TestPushPullImage(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, registry.Config{}, nil)
	// small chunks, so that the 300 KiB layer goes up in PATCHes and the small ones in one PUT
	c := newClient(t, Config{ChunkSize: 64 << 10})
	src := newMemStore()
	ti := buildImage(t, src, 1, linuxAMD64, 300<<10, 1000, 0, 60<<10)
	ref := reg.ref(t, "team/app:v1")

	var pp progressLog
	desc, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{Progress: pp.fn})
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if desc.Digest != ti.manifest.Digest {
		t.Fatalf("Push returned %s, want %s", desc.Digest, ti.manifest.Digest)
	}
	for _, d := range append(ti.blobs(), ti.manifest) {
		if p := pp.final(d); p.State != StateDone || p.Done != d.Size {
			t.Errorf("push progress of %s ended at %v %d/%d", d.Digest, p.State, p.Done, d.Size)
		}
	}
	if n := reg.log.count("PATCH", "/v2/team/app/blobs/uploads/"); n != 5 {
		t.Errorf("%d PATCH requests, want 5 (the 300 KiB layer in 64 KiB chunks)", n)
	}
	// the registry has it, as Resolve (HEAD) and a raw FetchManifest see it
	rd, err := c.Resolve(ctx, ref)
	if err != nil || rd.Digest != ti.manifest.Digest || rd.Size != ti.manifest.Size || rd.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("Resolve = %+v, %v; want %s", rd, err, ti.manifest.Digest)
	}

	dst := newMemStore()
	var pl progressLog
	res, err := c.Pull(ctx, ref, dst, PullOptions{Progress: pl.fn})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if res.Root.Digest != ti.manifest.Digest || len(res.Manifests) != 1 {
		t.Errorf("Pull result %+v", res)
	}
	checkPulled(t, src, dst, ti)
	for _, d := range ti.blobs() {
		if p := pl.final(d); p.State != StateDone || p.Done != d.Size {
			t.Errorf("pull progress of %s ended at %v %d/%d", d.Digest, p.State, p.Done, d.Size)
		}
	}

	// pulling again transfers nothing
	reg.log.reset()
	ingests := dst.ingests.Load()
	var again progressLog
	if _, err := c.Pull(ctx, ref, dst, PullOptions{Progress: again.fn}); err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	if dst.ingests.Load() != ingests || reg.log.count("GET", "/blobs/") != 0 {
		t.Errorf("second pull fetched blobs: %d ingests, %d blob GETs", dst.ingests.Load()-ingests, reg.log.count("GET", "/blobs/"))
	}
	if p := again.final(ti.layers[0]); p.State != StateExists {
		t.Errorf("second pull reported %v for a layer the sink has", p.State)
	}

	// pushing again sends no blob (HEAD finds each)
	reg.log.reset()
	if _, err := c.Push(ctx, src, ti.manifest, ref, PushOptions{}); err != nil {
		t.Fatalf("second Push: %v", err)
	}
	if n := reg.log.count("POST", "/blobs/uploads/"); n != 0 {
		t.Errorf("second push started %d uploads", n)
	}
}

// TestPullIntoContentStore pulls into the real local content store and pushes back from it.
func TestPullIntoContentStore(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, registry.Config{}, nil)
	c := newClient(t, Config{ChunkSize: 64 << 10})
	src := newMemStore()
	ti := buildImage(t, src, 2, linuxAMD64, 200<<10, 10)
	if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "a:v1"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := content.Open(ctx, content.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := c.Pull(ctx, reg.ref(t, "a:v1"), st, PullOptions{}); err != nil {
		t.Fatalf("Pull into the content store: %v", err)
	}
	for _, d := range append(ti.blobs(), ti.manifest) {
		b, err := st.ReadBlob(ctx, d, 1<<20)
		if err != nil || !bytes.Equal(b, src.bytes(d.Digest)) {
			t.Errorf("content store's %s: %v", d.Digest, err)
		}
	}
	if _, err := c.Push(ctx, st, ti.manifest, reg.ref(t, "b:v1"), PushOptions{}); err != nil {
		t.Fatalf("Push from the content store: %v", err)
	}
}

func TestPushPullIndex(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, registry.Config{}, nil)
	c := newClient(t, Config{})
	src := newMemStore()
	amd := buildImage(t, src, 10, linuxAMD64, 50<<10, 3000)
	arm := buildImage(t, src, 20, linuxARM64, 40<<10, 2000)
	idx := buildIndex(src, amd, arm)
	ref := reg.ref(t, "multi:1.0")
	if _, err := c.Push(ctx, src, idx, ref, PushOptions{}); err != nil {
		t.Fatalf("Push index: %v", err)
	}

	// one platform, asked for: only its blobs come (and the index)
	dst := newMemStore()
	res, err := c.Pull(ctx, ref, dst, PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "aarch64"}})
	if err != nil {
		t.Fatalf("Pull arm64: %v", err)
	}
	if res.Root.Digest != idx.Digest || res.Root.MediaType != ocispec.MediaTypeImageIndex || len(res.Manifests) != 1 || res.Manifests[0].Digest != arm.manifest.Digest {
		t.Fatalf("Pull arm64 = %+v", res)
	}
	checkPulled(t, src, dst, arm)
	if dst.bytes(idx.Digest) == nil {
		t.Error("the index was not ingested")
	}
	for _, d := range amd.blobs() {
		if dst.bytes(d.Digest) != nil {
			t.Errorf("amd64's %s was pulled for arm64", d.Digest)
		}
	}

	// all platforms
	all := newMemStore()
	res, err = c.Pull(ctx, ref, all, PullOptions{AllPlatforms: true})
	if err != nil || len(res.Manifests) != 2 {
		t.Fatalf("Pull all = %+v, %v", res, err)
	}
	checkPulled(t, src, all, amd)
	checkPulled(t, src, all, arm)

	// a platform the index lacks
	_, err = c.Pull(ctx, ref, newMemStore(), PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Pull s390x = %v, want not found", err)
	}

	// by digest, with the default (host) platform when the host is one of the two
	byDigest := reg.ref(t, "multi@"+string(idx.Digest))
	if p := DefaultPlatform(); platformScore(p, &linuxAMD64) > 0 || platformScore(p, &linuxARM64) > 0 {
		got := newMemStore()
		if _, err := c.Pull(ctx, byDigest, got, PullOptions{}); err != nil {
			t.Fatalf("Pull by digest for the host: %v", err)
		}
	} else {
		t.Logf("host platform %s is neither linux/amd64 nor linux/arm64: default selection not exercised", platformString(&p))
	}
}

func TestTagsReferrersDelete(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, registry.Config{Delete: registry.DeleteConfig{Tags: true}}, nil)
	c := newClient(t, Config{})
	src := newMemStore()
	ti := buildImage(t, src, 3, linuxAMD64, 100)
	tags := []string{"v5", "v1", "v3", "v2", "v4"}
	for _, tag := range tags {
		if _, err := c.Push(ctx, src, ti.manifest, reg.ref(t, "tagged:"+tag), PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	reg.log.reset()
	got, err := c.Tags(ctx, reg.ref(t, "tagged"), 2)
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if want := []string{"v1", "v2", "v3", "v4", "v5"}; !slices.Equal(got, want) {
		t.Errorf("Tags = %v, want %v", got, want)
	}
	if n := reg.log.count("GET", "/tags/list"); n != 3 {
		t.Errorf("%d tag list requests for 5 tags by 2, want 3", n)
	}

	// an artifact referring to the image
	empty := src.put(ocispec.MediaTypeEmptyJSON, []byte("{}"))
	subj := ti.manifest
	subj.Platform = nil
	art, _ := json.Marshal(ocispec.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.sbom", Config: empty, Layers: []ocispec.Descriptor{empty}, Subject: &subj})
	artDesc := src.put(ocispec.MediaTypeImageManifest, art)
	if _, err := c.Push(ctx, src, artDesc, reg.ref(t, "tagged@"+string(artDesc.Digest)), PushOptions{}); err != nil {
		t.Fatalf("Push artifact: %v", err)
	}
	refs, err := c.Referrers(ctx, reg.ref(t, "tagged"), ti.manifest.Digest, "application/vnd.example.sbom")
	if err != nil || len(refs) != 1 || refs[0].Digest != artDesc.Digest {
		t.Errorf("Referrers = %+v, %v", refs, err)
	}
	if refs, err := c.Referrers(ctx, reg.ref(t, "tagged"), ti.manifest.Digest, "application/other"); err != nil || len(refs) != 0 {
		t.Errorf("Referrers(other type) = %+v, %v", refs, err)
	}

	if err := c.Delete(ctx, reg.ref(t, "tagged:v5")); err != nil {
		t.Fatalf("Delete tag: %v", err)
	}
	if _, err := c.Resolve(ctx, reg.ref(t, "tagged:v5")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Resolve of a deleted tag = %v", err)
	}
	if err := c.Delete(ctx, reg.ref(t, "tagged@"+string(artDesc.Digest))); err != nil {
		t.Fatalf("Delete by digest: %v", err)
	}
	if err := c.DeleteBlob(ctx, reg.ref(t, "tagged"), ti.layers[0].Digest); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	rc, err := c.FetchBlob(ctx, reg.ref(t, "tagged"), ti.layers[0])
	if err == nil {
		rc.Close()
	}
	var re *ResponseError
	if !errors.Is(err, errdefs.ErrNotFound) || !errors.As(err, &re) || !re.HasCode("BLOB_UNKNOWN") {
		t.Errorf("FetchBlob of a deleted blob = %v, want BLOB_UNKNOWN", err)
	}
}

func TestNotFoundIsNotRetried(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, registry.Config{}, nil)
	c := newClient(t, Config{})
	_, _, err := c.FetchManifest(ctx, reg.ref(t, "nothing:here"))
	var re *ResponseError
	if !errors.Is(err, errdefs.ErrNotFound) || !errors.As(err, &re) || !re.HasCode("MANIFEST_UNKNOWN") {
		t.Fatalf("FetchManifest of nothing = %v, want MANIFEST_UNKNOWN", err)
	}
	t.Logf("error: %v", err)
	if n := reg.log.count("GET", "/manifests/"); n != 1 {
		t.Errorf("%d GETs for a 404, want 1", n)
	}
}

// Docker schema 2 manifests go through the same walk.
func TestDockerSchema2(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, registry.Config{}, nil)
	c := newClient(t, Config{})
	src := newMemStore()
	layer := src.put("application/vnd.docker.image.rootfs.diff.tar.gzip", randomBytes(7, 5000))
	cfg := src.put("application/vnd.docker.container.image.v1+json", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	mb, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
		"config": cfg, "layers": []ocispec.Descriptor{layer}})
	m := src.put("application/vnd.docker.distribution.manifest.v2+json", mb)
	ref := reg.ref(t, "docker:v2")
	if _, err := c.Push(ctx, src, m, ref, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := newMemStore()
	res, err := c.Pull(ctx, ref, dst, PullOptions{})
	if err != nil || res.Root.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Fatalf("Pull = %+v, %v", res, err)
	}
	if !bytes.Equal(dst.bytes(layer.Digest), src.bytes(layer.Digest)) {
		t.Error("layer differs")
	}
}

func fetchAll(t *testing.T, c *Client, repo reference.Image, d ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := c.FetchBlob(context.Background(), repo, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
