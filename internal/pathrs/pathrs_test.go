package pathrs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func realPath(t *testing.T, f *os.File) string {
	t.Helper()
	p, err := os.Readlink(ProcPath(f))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSymlinksStayInsideRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink("/", filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../"+outside, filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()

	f, err := MkdirAll(rf, "abs/etc/x", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := realPath(t, f), filepath.Join(root, "etc/x"); got != want {
		t.Fatalf("abs symlink: created %s, want %s", got, want)
	}
	f.Close()

	// The relative symlink points, inside the root, at a directory that does not exist: it is
	// created there, as mkdir -p would through a symlink, never outside.
	f, err = EnsureFile(rf, "rel/file", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	got := realPath(t, f)
	f.Close()
	if want := filepath.Join(root, outside, "file"); got != want {
		t.Fatalf("relative symlink: created %s, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(outside, "file")); !os.IsNotExist(err) {
		t.Fatalf("a file was created outside the root: %v", err)
	}

	f, err = Open(rf, "../../../", unix.O_PATH)
	if err != nil {
		t.Fatal(err)
	}
	if got := realPath(t, f); got != root {
		t.Fatalf(".. resolved to %s, want the root %s", got, root)
	}
	f.Close()
}

func TestSymlinkLoop(t *testing.T) {
	root := t.TempDir()
	if err := os.Symlink("b", filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	rf, _ := os.Open(root)
	defer rf.Close()
	if _, err := MkdirAll(rf, "/a/x", 0o755); err == nil {
		t.Fatal("a symlink loop was followed to the end")
	}
}

func TestMkdirAllRefusesAFile(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rf, _ := os.Open(root)
	defer rf.Close()
	if _, err := MkdirAll(rf, "/f", 0o755); err == nil {
		t.Fatal("MkdirAll over a regular file succeeded")
	}
	if _, err := MkdirAll(rf, "/f/sub", 0o755); err == nil {
		t.Fatal("MkdirAll below a regular file succeeded")
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Creating through a dangling symlink once leaked the descriptor of the link's target.
func TestDanglingLinkLeaksNoDescriptor(t *testing.T) {
	root := t.TempDir()
	rf, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	before := openFDs(t)
	for i := range 20 {
		link := filepath.Join(root, "l")
		os.Remove(link)
		os.RemoveAll(filepath.Join(root, "target"))
		if err := os.Symlink("target", link); err != nil {
			t.Fatal(err)
		}
		f, err := MkdirAll(rf, "l/sub", 0o755)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		f.Close()
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open after 20 creations through a dangling link, %d before", after, before)
	}
}
