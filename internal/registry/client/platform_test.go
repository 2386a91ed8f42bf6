package client

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSelectPlatform(t *testing.T) {
	mk := func(name string, p *ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.FromString(name), Platform: p, Annotations: map[string]string{"n": name}}
	}
	index := []ocispec.Descriptor{
		mk("attestation", &ocispec.Platform{OS: "unknown", Architecture: "unknown"}),
		mk("noplatform", nil),
		mk("amd64", &ocispec.Platform{OS: "linux", Architecture: "amd64"}),
		mk("amd64-again", &ocispec.Platform{OS: "linux", Architecture: "amd64"}),
		mk("armv6", &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}),
		mk("armv7", &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}),
		mk("arm64", &ocispec.Platform{OS: "linux", Architecture: "arm64"}),
		mk("windows", &ocispec.Platform{OS: "windows", Architecture: "amd64"}),
	}
	cases := []struct {
		want ocispec.Platform
		pick string
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, "amd64"}, // the first of equals
		{ocispec.Platform{OS: "linux", Architecture: "x86_64"}, "amd64"},
		{ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v1"}, "amd64"},
		{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "arm64"},
		{ocispec.Platform{OS: "linux", Architecture: "aarch64"}, "arm64"},
		{ocispec.Platform{OS: "linux", Architecture: "arm"}, "armv7"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v8"}, "armv7"}, // the newest that runs
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "armv6"},
		{ocispec.Platform{OS: "Windows", Architecture: "AMD64"}, "windows"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v5"}, ""},
		{ocispec.Platform{OS: "linux", Architecture: "s390x"}, ""},
	}
	for _, c := range cases {
		got, ok := selectPlatform(c.want, index)
		name := ""
		if ok {
			name = got.Annotations["n"]
		}
		if name != c.pick {
			t.Errorf("selectPlatform(%s) = %q, want %q", platformString(&c.want), name, c.pick)
		}
	}
	if p := DefaultPlatform(); p.OS == "" || p.Architecture == "" {
		t.Errorf("DefaultPlatform() = %+v", p)
	}
}
