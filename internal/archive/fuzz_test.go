package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// FuzzApply: whatever tar stream arrives, applying it writes nothing outside the target (a
// sibling directory with one file must stay exactly as it was), leaks no descriptor and never panics.
func FuzzApply(f *testing.F) {
	seeds := [][]entry{
		{file("a", "b"), dir("d"), symlink("d/l", "../a"), hardlink("h", "a")},
		{file("../escape", "x")},
		{symlink("l", "/"), file("l/escape", "x")},
		{symlink("l", "../../OUT"), file("l/escape", "x"), hardlink("h", "l/victim")},
		{file("d/.wh..wh..opq", ""), file(".wh.x", ""), file("d/y", "y")},
		{dir("./"), file("./a/./b/../c", "c")},
	}
	for _, s := range seeds {
		f.Add(tarOf(f, s...))
	}
	f.Add(sparseTar("s", 1<<20, 4096, "data"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		out := filepath.Join(base, "OUT")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "victim"), []byte("host"), 0o644); err != nil {
			t.Fatal(err)
		}
		fds := openFDs(t)
		// Sparse entries can claim any size; the deadline bounds their expansion.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = Apply(ctx, root, bytes.NewReader(data), unprivileged())
		cancel()
		if after := openFDs(t); after != fds {
			t.Fatalf("%d descriptors open after Apply, %d before", after, fds)
		}
		top, _ := os.ReadDir(base)
		if len(top) != 2 {
			t.Fatalf("written beside the root: %v", top)
		}
		entries, _ := os.ReadDir(out)
		if len(entries) != 1 {
			t.Fatalf("written into the sibling directory: %v", entries)
		}
		if b, _ := os.ReadFile(filepath.Join(out, "victim")); !bytes.Equal(b, []byte("host")) {
			t.Fatalf("the sibling file changed: %q", b)
		}
	})
}
