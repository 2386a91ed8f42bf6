package image

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/srv/web:/bin/sh\nbad line\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nweb:x:1000:\naudio:x:29:web,other\nvideo:x:44:other\n"), 0o644)
	for spec, want := range map[string]User{
		"":          {UID: 0, GID: 0, Home: "/root"},
		"web":       {UID: 1000, GID: 1000, AdditionalGids: []uint32{29}, Home: "/srv/web"},
		"1000":      {UID: 1000, GID: 1000, AdditionalGids: []uint32{29}, Home: "/srv/web"},
		"web:video": {UID: 1000, GID: 44, Home: "/srv/web"},
		"web:7":     {UID: 1000, GID: 7, Home: "/srv/web"},
		"4242":      {UID: 4242, GID: 0, Home: "/"},
		"4242:4243": {UID: 4242, GID: 4243, Home: "/"},
	} {
		got, err := ResolveUser(root, spec)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ResolveUser(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	for spec, msg := range map[string]string{
		"nobody":    `no user "nobody"`,
		"web:staff": `no group "staff"`,
	} {
		if _, err := ResolveUser(root, spec); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ResolveUser(%q): %v, want %q", spec, err, msg)
		}
	}
}

// /etc/passwd as a symlink pointing out of the root is read inside it.
func TestResolveUserStaysInTheRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "passwd"), []byte("evil:x:0:0::/:/bin/sh\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(root, "etc/passwd"))
	if _, err := ResolveUser(root, "evil"); err == nil {
		t.Fatal("a user was read from a file outside the root")
	}
}
