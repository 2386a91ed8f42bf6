package reference

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// The grammars exactly as the distribution-spec writes them: the hand-written parsers must agree.
var (
	specName = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	specTag  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

func TestValidateName(t *testing.T) {
	good := []string{"a", "library/busybox", "a.b", "a_b", "a__b", "a---b", "0/1/2", "conf123/legacy1",
		"my-org/sub.team/repo_name", strings.Repeat("a", MaxNameLength)}
	bad := []string{"", "A", "a/", "/a", "a//b", "a..b", "a___b", ".a", "a.", "_a", "a/_blobs", "..", "a/../b",
		"a/./b", "a b", "a\x00", "a%2fb", "ä", strings.Repeat("a", MaxNameLength+1), "a-", "-a", "a:b"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateName(n); !errors.Is(err, ErrNameInvalid) {
			t.Errorf("ValidateName(%q) = %v, want ErrNameInvalid", n, err)
		}
	}
}

func TestValidateTag(t *testing.T) {
	good := []string{"latest", "v1.0", "_x", "A-b_c.d", "0", strings.Repeat("t", MaxTagLength)}
	bad := []string{"", ".x", "-x", "a/b", "a:b", "..", ".", "a b", strings.Repeat("t", MaxTagLength+1), "sha256:abc"}
	for _, s := range good {
		if err := ValidateTag(s); err != nil {
			t.Errorf("ValidateTag(%q) = %v", s, err)
		}
	}
	for _, s := range bad {
		if err := ValidateTag(s); !errors.Is(err, ErrTagInvalid) {
			t.Errorf("ValidateTag(%q) = %v, want ErrTagInvalid", s, err)
		}
	}
}

func TestParseDigest(t *testing.T) {
	s256 := digest.FromString("x")
	s512 := digest.SHA512.FromString("x")
	for _, d := range []digest.Digest{s256, s512} {
		got, err := ParseDigest(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDigest(%s) = %v, %v", d, got, err)
		}
	}
	invalid := []string{"", "sha256", "sha256:", ":abc", "sha256:" + strings.ToUpper(s256.Encoded()),
		"sha256:" + s256.Encoded()[1:], "sha256:" + s256.Encoded() + "0", "sha512:" + s256.Encoded(),
		"sha256:totallywrong", "sha256:baddigeststring", "SHA256:" + s256.Encoded(), "sha256:../../etc/passwd"}
	for _, s := range invalid {
		if _, err := ParseDigest(s); !errors.Is(err, ErrDigestInvalid) {
			t.Errorf("ParseDigest(%q) = %v, want ErrDigestInvalid", s, err)
		}
	}
	for _, s := range []string{"sha384:" + strings.Repeat("a", 96), "blake3:" + strings.Repeat("a", 64), "md5:abc"} {
		if _, err := ParseDigest(s); !errors.Is(err, ErrDigestUnsupported) {
			t.Errorf("ParseDigest(%q) = %v, want ErrDigestUnsupported", s, err)
		}
	}
}

func TestParseReference(t *testing.T) {
	d := digest.FromString("m")
	r, err := ParseReference(d.String())
	if err != nil || r.Digest != d || r.Tag != "" || r.String() != d.String() {
		t.Fatalf("ParseReference(digest) = %+v, %v", r, err)
	}
	r, err = ParseReference("v1")
	if err != nil || r.Tag != "v1" || r.Digest != "" || r.String() != "v1" {
		t.Fatalf("ParseReference(tag) = %+v, %v", r, err)
	}
	for _, s := range []string{"", "sha256:nope", "a/b", ".hidden"} {
		if _, err := ParseReference(s); err == nil {
			t.Errorf("ParseReference(%q) accepted", s)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "library/busybox", "a__b", "a___b", "a/b/", "a-.b", "x/_y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateName(s)
		want := specName.MatchString(s) && len(s) <= MaxNameLength
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v, spec grammar says valid=%v", s, err, want)
		}
		if err == nil {
			for _, c := range strings.Split(s, "/") {
				if c == "" || c == "." || c == ".." || c[0] == '_' {
					t.Fatalf("accepted name %q has unsafe component %q", s, c)
				}
			}
		}
	})
}

func FuzzValidateTag(f *testing.F) {
	for _, s := range []string{"latest", "_", ".x", "a-b.c_d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateTag(s)
		if (err == nil) != specTag.MatchString(s) {
			t.Fatalf("ValidateTag(%q) = %v, spec grammar disagrees", s, err)
		}
	})
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"latest", digest.FromString("a").String(), digest.SHA512.FromString("a").String(),
		"sha256:abc", "sha384:" + strings.Repeat("0", 96), "x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			if r != (Reference{}) {
				t.Fatalf("error with a non-zero reference: %+v", r)
			}
			return
		}
		if (r.Tag == "") == (r.Digest == "") {
			t.Fatalf("ParseReference(%q) = %+v: exactly one of tag and digest must be set", s, r)
		}
		if r.Digest != "" {
			// Whatever we accept, go-digest must accept too, and it must be one we can verify.
			if err := r.Digest.Validate(); err != nil {
				t.Fatalf("accepted digest %q that go-digest rejects: %v", s, err)
			}
			if !Supported(r.Digest.Algorithm()) {
				t.Fatalf("accepted digest of unsupported algorithm %q", s)
			}
		}
		if r.String() != s {
			t.Fatalf("round trip %q -> %q", s, r.String())
		}
	})
}
