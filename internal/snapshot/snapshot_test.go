package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image"
)

type ent struct {
	name, body, link string
	typ              byte
}

func layerTar(t testing.TB, es ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		mode := int64(0o644)
		if e.typ == tar.TypeDir {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body)), Uid: 1000, Gid: 1000}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func file(n, b string) ent     { return ent{name: n, body: b, typ: tar.TypeReg} }
func dir(n string) ent         { return ent{name: n, typ: tar.TypeDir} }
func link(n, t string) ent     { return ent{name: n, link: t, typ: tar.TypeSymlink} }
func hardlink(n, t string) ent { return ent{name: n, link: t, typ: tar.TypeLink} }

// memProvider serves uncompressed layer tars by digest.
type memProvider map[digest.Digest][]byte

func (m memProvider) Open(ctx context.Context, d ocispec.Descriptor) (rc ioReadCloser, err error) {
	b, ok := m[d.Digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", d.Digest)
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

func stackOf(tars ...[]byte) (memProvider, []image.Layer) {
	p := memProvider{}
	var ls []image.Layer
	for _, b := range tars {
		dg := digest.FromBytes(b)
		p[dg] = b
		ls = append(ls, image.Layer{Desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: dg, Size: int64(len(b))}, DiffID: dg})
	}
	return p, ls
}

func tree(t testing.TB, root string) string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st = fi.Sys().(*syscallStat)
		own := fmt.Sprintf("%d:%d", st.Uid, st.Gid)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			out = append(out, rel+" l "+tgt+" "+own)
		case fi.IsDir():
			out = append(out, rel+" d "+fi.Mode().Perm().String()+" "+own)
		default:
			b, _ := os.ReadFile(p)
			out = append(out, fmt.Sprintf("%s f %s %s %s nlink=%d", rel, b, fi.Mode().Perm(), own, st.Nlink))
		}
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the snapshotter needs root (overlay markers, ownership, mounts)")
	}
}

func drivers(t *testing.T) []Driver {
	t.Helper()
	needRoot(t)
	return []Driver{DriverOverlay, DriverCopy}
}

func newSnapshotter(t *testing.T, d Driver) *Snapshotter {
	t.Helper()
	s, err := New(context.Background(), Config{Root: t.TempDir(), Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mounted prepares key on chain and mounts it; the mount goes away with the test.
func mounted(t *testing.T, s *Snapshotter, key string, chain digest.Digest) string {
	t.Helper()
	ctx := context.Background()
	ms, err := s.Prepare(ctx, key, chain)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := MountAll(ms, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		Unmount(target)
		s.Remove(ctx, key)
	})
	return target
}

// Both drivers give exactly the tree that flattening the layers gives.
func TestAssembledTreeMatchesFlattening(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	l0 := layerTar(t, dir("d"), file("a.txt", "a"), file("keep.txt", "keep"), dir("d/sub"), file("d/x", "x"), file("d/sub/y", "y"),
		dir("gone"), file("gone/g", "g"), dir("e"), file("e/f", "f"), file("hl", "shared"), hardlink("hl2", "hl"), link("ln", "keep.txt"))
	l1 := layerTar(t, dir("d"), file("d/new.txt", "new"), file("d/.wh..wh..opq", ""), file(".wh.a.txt", ""), file(".wh.gone", ""),
		dir("e"), file("e/.wh.f", ""), file("keep.txt", "changed"), link("a.txt", "keep.txt"))
	l2 := layerTar(t, file("gone", "a file now"), file("d/sub2", "s"))
	p, layers := stackOf(l0, l1, l2)
	flat := t.TempDir()
	if err := image.Unpack(ctx, p, layers, flat, image.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	want := tree(t, flat)
	for _, d := range drivers(t) {
		t.Run(string(d), func(t *testing.T) {
			s := newSnapshotter(t, d)
			top, err := s.Unpack(ctx, p, layers)
			if err != nil {
				t.Fatal(err)
			}
			if want := ChainIDs([]digest.Digest{layers[0].DiffID, layers[1].DiffID, layers[2].DiffID})[2]; top != want {
				t.Fatalf("top chain %s, want %s", top, want)
			}
			target := mounted(t, s, "c1", top)
			if got := tree(t, target); got != want {
				t.Fatalf("assembled tree:\n%s\nflattened:\n%s", got, want)
			}
			// Writes go to the snapshot, not to the shared layers.
			if err := os.WriteFile(filepath.Join(target, "keep.txt"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			other := mounted(t, s, "c2", top)
			if b, _ := os.ReadFile(filepath.Join(other, "keep.txt")); string(b) != "changed" {
				t.Fatalf("a second snapshot sees %q", b)
			}
			if _, err := s.Prepare(ctx, "c1", top); err == nil {
				t.Fatal("a second Prepare of the same key succeeded")
			}
		})
	}
}

// Two hundred layers: more lower directories than mount(2)'s page of options can name.
func TestManyLayers(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	var tars [][]byte
	for i := range 200 {
		tars = append(tars, layerTar(t, file(fmt.Sprintf("f%03d", i), fmt.Sprint(i)), file("top", fmt.Sprint(i))))
	}
	p, layers := stackOf(tars...)
	for _, d := range drivers(t) {
		t.Run(string(d), func(t *testing.T) {
			s := newSnapshotter(t, d)
			top, err := s.Unpack(ctx, p, layers)
			if err != nil {
				t.Fatal(err)
			}
			target := mounted(t, s, "many", top)
			ents, _ := os.ReadDir(target)
			if len(ents) != 201 {
				t.Fatalf("%d entries, want 201", len(ents))
			}
			if b, _ := os.ReadFile(filepath.Join(target, "top")); string(b) != "199" {
				t.Fatalf("top = %q", b)
			}
		})
	}
}

// Concurrent unpacks of one stack (as two pulls of one image would do) both succeed, once on disk.
func TestConcurrentUnpack(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	p, layers := stackOf(layerTar(t, file("a", "a")), layerTar(t, file("b", "b")))
	root := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := New(ctx, Config{Root: root, Driver: DriverOverlay})
			if err == nil {
				_, err = s.Unpack(ctx, p, layers)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "layers"))
	if len(ents) != 2 {
		t.Fatalf("%d layer directories, want 2", len(ents))
	}
}

func TestPruneKeepsWhatIsUsed(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s := newSnapshotter(t, DriverOverlay)
	p, layers := stackOf(layerTar(t, file("a", "a")), layerTar(t, file("b", "b")))
	top, err := s.Unpack(ctx, p, layers)
	if err != nil {
		t.Fatal(err)
	}
	p2, other := stackOf(layerTar(t, file("z", "z")))
	lone, err := s.Unpack(ctx, p2, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "active", top); err != nil {
		t.Fatal(err)
	}
	removed, err := s.Prune(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != lone {
		t.Fatalf("pruned %v, want only %s", removed, lone)
	}
	if !s.Has(top) || !s.Has(layers[0].DiffID) {
		t.Fatal("a layer under an active snapshot was pruned")
	}
	s.Remove(ctx, "active")
	if removed, _ := s.Prune(ctx, []digest.Digest{layers[0].DiffID}); len(removed) != 1 || removed[0] != top {
		t.Fatalf("second prune removed %v, want %s", removed, top)
	}
}
