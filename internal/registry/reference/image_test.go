package reference

import (
	"errors"
	"strings"
	"testing"
)

func TestParseImage(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	good := []struct {
		in, def string
		want    Image
	}{
		{"localhost:5000/foo", "", Image{Host: "localhost:5000", Name: "foo", Tag: "latest"}},
		{"localhost/foo/bar:v1", "", Image{Host: "localhost", Name: "foo/bar", Tag: "v1"}},
		{"127.0.0.1:5000/a/b/c:v1@" + d, "", Image{Host: "127.0.0.1:5000", Name: "a/b/c", Tag: "v1", Digest: d}},
		{"reg.example.com/x@" + d, "", Image{Host: "reg.example.com", Name: "x", Digest: d}},
		{"[::1]:5000/x:t", "", Image{Host: "[::1]:5000", Name: "x", Tag: "t"}},
		{"[::1]/x", "", Image{Host: "[::1]", Name: "x", Tag: "latest"}},
		{"Registry/x", "", Image{Host: "Registry", Name: "x", Tag: "latest"}},
		{"foo", "localhost:5000", Image{Host: "localhost:5000", Name: "foo", Tag: "latest"}},
		{"library/busybox:1.36", "reg.local", Image{Host: "reg.local", Name: "library/busybox", Tag: "1.36"}},
	}
	for _, c := range good {
		got, err := ParseImage(c.in, c.def)
		if err != nil {
			t.Errorf("ParseImage(%q, %q): %v", c.in, c.def, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseImage(%q, %q) = %+v, want %+v", c.in, c.def, got, c.want)
		}
		again, err := ParseImage(got.String(), "")
		if err != nil || again != got {
			t.Errorf("ParseImage(%q).String() = %q does not parse back: %+v, %v", c.in, got.String(), again, err)
		}
	}
	bad := []struct {
		in, def string
		want    error
	}{
		{"", "", ErrImageInvalid},
		{"busybox", "", ErrNoHost},
		{"library/busybox:1", "", ErrNoHost},
		{"localhost:5000/Foo", "", ErrNameInvalid},
		{"localhost:5000/foo:", "", ErrTagInvalid},
		{"localhost:5000/foo:.x", "", ErrTagInvalid},
		{"localhost:5000/foo@sha256:abc", "", ErrDigestInvalid},
		{"localhost:5000/foo@md5:abc", "", ErrDigestUnsupported},
		{"localhost:x/foo", "", ErrImageInvalid},
		{"localhost:123456/foo", "", ErrImageInvalid},
		{"-bad.host/foo", "", ErrImageInvalid},
		{"a..b/foo", "", ErrImageInvalid},
		{"[::1/foo", "", ErrImageInvalid},
		{"[zz]/foo", "", ErrImageInvalid},
		{"localhost:5000/", "", ErrNameInvalid},
		{"foo", "bad host!", ErrImageInvalid},
		{"localhost/" + strings.Repeat("a", 5000), "", ErrImageInvalid},
	}
	for _, c := range bad {
		if _, err := ParseImage(c.in, c.def); !errors.Is(err, c.want) {
			t.Errorf("ParseImage(%q, %q) = %v, want %v", c.in, c.def, err, c.want)
		}
	}
}

// FuzzParseImage checks that whatever ParseImage accepts is made of valid parts and writes back
// to a string that parses to the same reference.
func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"localhost:5000/foo:v1", "a.b/c/d@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"[::1]:1/x", "busybox", "x/y:z"} {
		f.Add(s, "")
		f.Add(s, "localhost")
	}
	f.Fuzz(func(t *testing.T, s, def string) {
		img, err := ParseImage(s, def)
		if err != nil {
			return
		}
		if ValidateName(img.Name) != nil || img.Host == "" || (img.Tag == "" && img.Digest == "") {
			t.Fatalf("ParseImage(%q, %q) accepted %+v", s, def, img)
		}
		if img.Tag != "" && ValidateTag(img.Tag) != nil {
			t.Fatalf("bad tag accepted: %+v", img)
		}
		again, err := ParseImage(img.String(), "")
		if err != nil || again != img {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, img, img.String(), again, err)
		}
	})
}
