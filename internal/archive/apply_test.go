package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entry describes one tar entry for the tests; zero fields get sensible defaults.
type entry struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	mtime    time.Time
	xattrs   map[string]string
	major    int64
	minor    int64
}

func file(name, body string) entry      { return entry{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) entry             { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) entry { return entry{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, link: target}
}

var epoch = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: e.mtime, Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
			if e.typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.ModTime.IsZero() {
			h.ModTime = epoch
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if len(e.xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func apply(t testing.TB, root string, o Options, entries ...entry) error {
	t.Helper()
	_, err := Apply(context.Background(), root, bytes.NewReader(tarOf(t, entries...)), o)
	return err
}

func mustApply(t testing.TB, root string, o Options, entries ...entry) {
	t.Helper()
	if err := apply(t, root, o, entries...); err != nil {
		t.Fatal(err)
	}
}

// tree lists root as "path type" lines (type: f file with its content, d dir, l symlink with its
// target), sorted.
func tree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" l "+target)
		case fi.IsDir():
			out = append(out, rel+" d")
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			out = append(out, rel+" f "+string(b))
		default:
			out = append(out, rel+" "+fi.Mode().Type().String()[:1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func wantTree(t *testing.T, root string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := tree(t, root); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: ownership and device nodes are applied as the layer says")
	}
}

// unprivileged is what a non-root caller must use.
func unprivileged() Options {
	if os.Getuid() == 0 {
		return Options{}
	}
	return Options{NoChown: true}
}

func TestApplyKinds(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, unprivileged(),
		dir("etc"), file("etc/hostname", "box\n"), symlink("etc/link", "hostname"),
		hardlink("etc/hard", "etc/hostname"), file("deep/er/f", "implicit parents"),
		entry{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
		entry{name: "/abs", typ: tar.TypeReg, body: "absolute names are taken as relative"},
	)
	wantTree(t, root,
		"abs f absolute names are taken as relative", "deep d", "deep/er d", "deep/er/f f implicit parents",
		"etc d", "etc/hard f box\n", "etc/hostname f box\n", "etc/link l hostname", "fifo p")
	a, _ := os.Stat(filepath.Join(root, "etc/hostname"))
	b, _ := os.Stat(filepath.Join(root, "etc/hard"))
	if !os.SameFile(a, b) {
		t.Error("etc/hard is not a hard link of etc/hostname")
	}
	for _, p := range []string{"etc/hostname", "etc"} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", p, fi.ModTime(), epoch)
		}
	}
	if fi, _ := os.Lstat(filepath.Join(root, "etc/link")); !fi.ModTime().Equal(epoch) {
		t.Errorf("symlink mtime %v, want %v (set without following)", fi.ModTime(), epoch)
	}
}

func TestApplyOwnershipModesXattrsDevices(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	mustApply(t, root, Options{},
		entry{name: "suid", typ: tar.TypeReg, body: "x", mode: 0o4755, uid: 1000, gid: 1001},
		entry{name: "d", typ: tar.TypeDir, mode: 0o1777, uid: 5, gid: 6},
		entry{name: "l", typ: tar.TypeSymlink, link: "/nowhere", uid: 7, gid: 8},
		entry{name: "null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		entry{name: "cap", typ: tar.TypeReg, body: "y", mode: 0o755, xattrs: map[string]string{"user.berth": "v"}},
	)
	check := func(p string, mode os.FileMode, uid, gid uint32) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		if mode != 0 && os.FileMode(st.Mode&0o7777) != mode {
			t.Errorf("%s: mode %o, want %o", p, st.Mode&0o7777, mode)
		}
	}
	check("suid", 0o4755, 1000, 1001) // set-uid survives the chown because chmod comes after
	check("d", 0o1777, 5, 6)
	check("l", 0, 7, 8)
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("null: %+v %v, want the character device 1:3", st, err)
	}
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(root, "cap"), "user.berth", buf)
	if errors.Is(err, unix.ENOTSUP) {
		t.Log("user xattrs not supported on", root)
	} else if err != nil || string(buf[:n]) != "v" {
		t.Errorf("xattr user.berth = %q, %v; want v", buf[:n], err)
	}
}

// TestWhiteoutsFlatten: the eval's whiteout image, and whiteouts never hiding what their own
// layer wrote, whatever the order of entries.
func TestWhiteoutsFlatten(t *testing.T) {
	root := t.TempDir()
	o := unprivileged()
	mustApply(t, root, o, file("a.txt", "a"), file("keep.txt", "keep"), file("d/x", "x"), file("d/sub/y", "y"),
		file("gone/g1", "1"), file("gone/g2", "2"), file("e/f", "f"))
	mustApply(t, root, o, dir("d"), file("d/new.txt", "new"), file("d/.wh..wh..opq", ""), file(".wh.a.txt", ""),
		file(".wh.gone", ""), dir("e"), file("e/.wh.f", ""))
	wantTree(t, root, "d d", "d/new.txt f new", "e d", "keep.txt f keep")

	// Same layer: the whiteout comes before the file it names, and an opaque directory keeps its
	// own new subdirectory but not the lower one's content.
	root = t.TempDir()
	mustApply(t, root, o, file("w", "old"), file("o/sub/lower", "l"), file("o/lowerfile", "l"))
	mustApply(t, root, o, file(".wh.w", ""), file("w", "new"), file("o/.wh..wh..opq", ""), file("o/sub/upper", "u"))
	wantTree(t, root, "o d", "o/sub d", "o/sub/upper f u", "w f new")
}

func TestWhiteoutsOverlay(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	mustApply(t, root, Options{Overlay: true}, file("d/.wh..wh..opq", ""), file("d/keep", "k"), file(".wh.gone", ""))
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("gone: %+v %v, want a 0/0 character device", st, err)
	}
	buf := make([]byte, 4)
	n, err := unix.Getxattr(filepath.Join(root, "d"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("d: trusted.overlay.opaque = %q, %v; want y", buf[:n], err)
	}
	if _, err := os.Stat(filepath.Join(root, "d/.wh..wh..opq")); !os.IsNotExist(err) {
		t.Error("the opaque marker itself was written")
	}
}

// TestHostileLayers: nothing a layer says can write outside the target.
func TestHostileLayers(t *testing.T) {
	o := unprivileged()
	for _, c := range []struct {
		name    string
		layers  [][]entry
		wantErr bool
	}{
		{"dot-dot", [][]entry{{file("../escape", "x")}}, true},
		{"dot-dot inside", [][]entry{{file("a/../../escape", "x")}}, true},
		{"absolute through symlink to /", [][]entry{{symlink("l", "/"), file("l/escape", "x")}}, false},
		{"relative symlink climbing out", [][]entry{{symlink("l", "../../../../../../OUT"), file("l/escape", "x")}}, false},
		{"symlink planted by a lower layer", [][]entry{{symlink("d", "OUT")}, {file("d/escape", "x")}}, false},
		{"file replacing a symlink to outside", [][]entry{{symlink("f", "OUT/escape")}, {file("f", "x")}}, false},
		{"dir replacing a symlink to outside", [][]entry{{symlink("d", "OUT")}, {dir("d"), file("d/escape", "x")}}, false},
		{"hard link out", [][]entry{{hardlink("h", "../OUT/victim")}}, true},
		{"hard link to an absolute host path", [][]entry{{hardlink("h", "OUT/victim")}}, true},
		{"hard link through a symlink", [][]entry{{symlink("s", "OUT"), hardlink("h", "s/victim")}}, true},
		{"whiteout through a symlink", [][]entry{{symlink("s", "OUT")}, {file("s/.wh.victim", "")}}, false},
		{"whiteout of dot-dot", [][]entry{{file(".wh...", "")}}, true},
		{"opaque through a symlink", [][]entry{{symlink("s", "OUT")}, {file("s/.wh..wh..opq", "")}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			out := filepath.Join(base, "OUT")
			for _, d := range []string{root, out} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			victim := filepath.Join(out, "victim")
			if err := os.WriteFile(victim, []byte("host"), 0o644); err != nil {
				t.Fatal(err)
			}
			// Absolute symlink targets name the host's OUT as an absolute path.
			var err error
			for _, layer := range c.layers {
				for i := range layer {
					if layer[i].typ == tar.TypeSymlink && layer[i].link == "OUT" {
						layer[i].link = out
					}
					if layer[i].link == "OUT/escape" {
						layer[i].link = filepath.Join(out, "escape")
					}
					if layer[i].link == "OUT/victim" {
						layer[i].link = victim
					}
				}
				if err = apply(t, root, o, layer...); err != nil {
					break
				}
			}
			if c.wantErr && err == nil {
				t.Error("the layer was accepted")
			}
			if !c.wantErr && err != nil {
				t.Errorf("refused: %v", err)
			}
			if c.wantErr && err != nil && !errors.Is(err, ErrUnsafeEntry) && !errors.Is(err, unix.ENOENT) {
				t.Logf("refused with %v", err)
			}
			entries, _ := os.ReadDir(out)
			if len(entries) != 1 || entries[0].Name() != "victim" {
				t.Errorf("the outside directory changed: %v", entries)
			}
			if b, _ := os.ReadFile(victim); string(b) != "host" {
				t.Errorf("the outside file changed: %q", b)
			}
			var st unix.Stat_t
			if err := unix.Stat(victim, &st); err == nil && st.Nlink != 1 {
				t.Errorf("the outside file got a hard link (nlink %d)", st.Nlink)
			}
			top, _ := os.ReadDir(base)
			if len(top) != 2 {
				t.Errorf("something was written beside the root: %v", top)
			}
		})
	}
}

func TestReplaceKinds(t *testing.T) {
	root := t.TempDir()
	o := unprivileged()
	mustApply(t, root, o, file("x/y", "1"), file("f", "file"), symlink("s", "f"))
	// A directory becomes a file, a file a directory, a symlink a file: each replaces the other.
	mustApply(t, root, o, file("x", "now a file"), dir("f"), file("f/inner", "now a dir"), file("s", "now a file"))
	wantTree(t, root, "f d", "f/inner f now a dir", "s f now a file", "x f now a file")
}

func TestHardLinkToDirectoryRefused(t *testing.T) {
	root := t.TempDir()
	err := apply(t, root, unprivileged(), dir("d"), hardlink("h", "d"))
	if !errors.Is(err, ErrUnsafeEntry) {
		t.Fatalf("hard link to a directory: %v, want ErrUnsafeEntry", err)
	}
}

func TestApplyStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(tarOf(t, file("a", "b"))), unprivileged())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled apply: %v", err)
	}
}

func TestDecompress(t *testing.T) {
	plain := tarOf(t, file("a", strings.Repeat("z", 10000)))
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		blob := compress(t, plain, c)
		got, r, err := Detect(bytes.NewReader(blob))
		if err != nil || got != c {
			t.Fatalf("Detect(%v) = %v, %v", c, got, err)
		}
		rc, err := Decompress(r, got)
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		if _, err := Apply(context.Background(), root, rc, unprivileged()); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		rc.Close()
		if b, _ := os.ReadFile(filepath.Join(root, "a")); len(b) != 10000 {
			t.Errorf("%v: %d bytes, want 10000", c, len(b))
		}
	}
}
