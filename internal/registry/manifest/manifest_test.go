package manifest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	cfgDigest   = digest.FromString("config")
	layerDigest = digest.FromString("layer")
)

func ociManifest(extra string) string {
	return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfgDigest.String() + `","size":6},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + layerDigest.String() + `","size":5}]` + extra + `}`
}

func TestParseImageManifest(t *testing.T) {
	m, err := Parse(ocispec.MediaTypeImageManifest, []byte(ociManifest("")))
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest || len(m.Blobs) != 2 || m.Blobs[0].Digest != cfgDigest ||
		m.Blobs[1].Digest != layerDigest || m.Subject != nil || m.ArtifactType != ocispec.MediaTypeImageConfig {
		t.Fatalf("unexpected parse: %+v", m)
	}
	// Content-Type with parameters, or absent: the body decides.
	for _, ct := range []string{"application/vnd.oci.image.manifest.v1+json; charset=utf-8", "", "application/json"} {
		if m, err := Parse(ct, []byte(ociManifest(""))); err != nil || m.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("Parse(%q) = %+v, %v", ct, m, err)
		}
	}
}

func TestParseSubjectAndArtifactType(t *testing.T) {
	subj := digest.FromString("subject")
	body := ociManifest(`,"artifactType":"application/vnd.example+type","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` +
		subj.String() + `","size":10},"annotations":{"a":"b"}`)
	m, err := Parse(ocispec.MediaTypeImageManifest, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject == nil || m.Subject.Digest != subj || m.ArtifactType != "application/vnd.example+type" || m.Annotations["a"] != "b" {
		t.Fatalf("unexpected parse: %+v", m)
	}
	d := m.Descriptor(digest.FromString(body), int64(len(body)))
	if d.ArtifactType != m.ArtifactType || d.MediaType != ocispec.MediaTypeImageManifest || d.Annotations["a"] != "b" {
		t.Fatalf("descriptor %+v", d)
	}
	if s := SubjectOf([]byte(body)); s == nil || s.Digest != subj {
		t.Fatalf("SubjectOf = %v", s)
	}
}

func TestParseIndexAndDocker(t *testing.T) {
	child := digest.FromString("child")
	idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + child.String() + `","size":3,"platform":{"architecture":"amd64","os":"linux"}}]}`
	m, err := Parse(ocispec.MediaTypeImageIndex, []byte(idx))
	if err != nil || !IsIndex(m.MediaType) || len(m.Manifests) != 1 || len(m.Blobs) != 0 {
		t.Fatalf("index: %+v %v", m, err)
	}
	refs := References([]byte(idx))
	if len(refs) != 1 || refs[0] != child {
		t.Fatalf("References(index) = %v", refs)
	}
	docker := strings.Replace(ociManifest(""), ocispec.MediaTypeImageManifest, MediaTypeDockerManifest, 1)
	if m, err := Parse(MediaTypeDockerManifest, []byte(docker)); err != nil || m.MediaType != MediaTypeDockerManifest {
		t.Fatalf("docker manifest: %+v %v", m, err)
	}
	list := strings.Replace(idx, ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList, 1)
	if m, err := Parse(MediaTypeDockerManifestList, []byte(list)); err != nil || m.MediaType != MediaTypeDockerManifestList {
		t.Fatalf("docker list: %+v %v", m, err)
	}
	// an empty index is fine
	if _, err := Parse(ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"manifests":[]}`)); err != nil {
		t.Fatal(err)
	}
}

func TestNonDistributableLayersAreNotRequired(t *testing.T) {
	nd := digest.FromString("nd")
	body := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfgDigest.String() + `","size":6},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"` + nd.String() + `","size":5,"urls":["https://example.com/x"]}]}`
	m, err := Parse("", []byte(body))
	if err != nil || len(m.Blobs) != 1 {
		t.Fatalf("%+v %v", m, err)
	}
}

func TestParseRejects(t *testing.T) {
	sub := func(old, new string) string { return strings.Replace(ociManifest(""), old, new, 1) }
	cases := map[string]struct {
		ct, body string
	}{
		"not json":             {ocispec.MediaTypeImageManifest, "nope"},
		"array":                {ocispec.MediaTypeImageManifest, "[]"},
		"truncated":            {ocispec.MediaTypeImageManifest, ociManifest("")[:50]},
		"schema 1 type":        {MediaTypeDockerSchema1JWS, `{"schemaVersion":1,"fsLayers":[]}`},
		"schema 1 body":        {"", `{"schemaVersion":1,"name":"x","fsLayers":[]}`},
		"no schemaVersion":     {ocispec.MediaTypeImageManifest, `{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}`},
		"schemaVersion 3":      {ocispec.MediaTypeImageManifest, sub(`"schemaVersion":2`, `"schemaVersion":3`)},
		"type mismatch":        {ocispec.MediaTypeImageIndex, ociManifest("")},
		"unknown type":         {"application/x-whatever", `{"schemaVersion":2,"config":{}}`},
		"no config":            {"", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`},
		"bad config digest":    {"", sub(cfgDigest.String(), "sha256:nothex")},
		"upper-case digest":    {"", sub(cfgDigest.String(), strings.ToUpper(cfgDigest.String()))},
		"unsupported alg":      {"", sub(cfgDigest.String(), "md5:abcd")},
		"negative size":        {"", sub(`"size":6`, `"size":-1`)},
		"bad media type":       {"", sub(`application/vnd.oci.image.layer.v1.tar+gzip`, `not a type`)},
		"bad url":              {"", ociManifest(`,"subject":{"mediaType":"a/b","digest":"` + cfgDigest.String() + `","size":1,"urls":["file:///etc/passwd"]}`)},
		"bad subject":          {"", ociManifest(`,"subject":{"mediaType":"a/b","digest":"x","size":1}`)},
		"index with config":    {ocispec.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[],"config":{"mediaType":"a/b","digest":"` + cfgDigest.String() + `","size":1}}`},
		"manifest with list":   {ocispec.MediaTypeImageManifest, ociManifest(`,"manifests":[]`)},
		"ambiguous shape":      {"", `{"schemaVersion":2}`},
		"data mismatch":        {"", sub(`"size":6}`, `"size":6,"data":"eHg="}`)},
		"docker needs type":    {MediaTypeDockerManifest, strings.Replace(ociManifest(""), `"mediaType":"application/vnd.oci.image.manifest.v1+json",`, "", 1)},
		"bad artifactType":     {"", ociManifest(`,"artifactType":"nope"`)},
		"bad child in index":   {ocispec.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:0","size":1}]}`},
		"wrong type for field": {"", `{"schemaVersion":"2"}`},
	}
	for name, c := range cases {
		if m, err := Parse(c.ct, []byte(c.body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse = %+v, %v; want ErrInvalid", name, m, err)
		}
	}
}

func TestReferencesIsLenient(t *testing.T) {
	if refs := References([]byte("garbage")); refs != nil {
		t.Fatalf("References(garbage) = %v", refs)
	}
	refs := References([]byte(ociManifest("")))
	if len(refs) != 2 || refs[0] != cfgDigest || refs[1] != layerDigest {
		t.Fatalf("References = %v", refs)
	}
}

// FuzzParse feeds arbitrary bodies and Content-Types: Parse must never panic, and what it accepts
// must be internally consistent (a known media type, valid digests everywhere the registry will
// look things up, and the same references the lenient GC parser finds).
func FuzzParse(f *testing.F) {
	f.Add(ocispec.MediaTypeImageManifest, []byte(ociManifest("")))
	f.Add(ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"`+cfgDigest.String()+`","size":1}]}`))
	f.Add("", []byte(`{"schemaVersion":2}`))
	f.Add(MediaTypeDockerManifest, []byte(strings.Replace(ociManifest(""), ocispec.MediaTypeImageManifest, MediaTypeDockerManifest, 1)))
	f.Add(MediaTypeDockerSchema1JWS, []byte(`{"schemaVersion":1,"fsLayers":[]}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		m, err := Parse(ct, body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error outside ErrInvalid: %v", err)
			}
			return
		}
		if !Known(m.MediaType) {
			t.Fatalf("accepted unknown media type %q", m.MediaType)
		}
		for _, d := range append(append([]ocispec.Descriptor{}, m.Blobs...), m.Manifests...) {
			if err := d.Digest.Validate(); err != nil || d.Size < 0 {
				t.Fatalf("accepted bad descriptor %+v", d)
			}
		}
		if IsIndex(m.MediaType) != (len(m.Blobs) == 0) {
			t.Fatalf("index %v with blobs %v", IsIndex(m.MediaType), m.Blobs)
		}
		refs := map[digest.Digest]bool{}
		for _, d := range References(body) {
			refs[d] = true
		}
		for _, d := range append(append([]ocispec.Descriptor{}, m.Blobs...), m.Manifests...) {
			if !refs[d.Digest] {
				t.Fatalf("GC would not mark %s", d.Digest)
			}
		}
		if _, err := json.Marshal(m.Descriptor(digest.FromBytes(body), int64(len(body)))); err != nil {
			t.Fatal(err)
		}
	})
}
