// Command imagebench measures `berth image bundle oci:LAYOUT:TAG DIR` against the anchor,
// `umoci raw unpack` (Debian), on the same generated image in one interleaved run, checks that
// both produce the same tree (paths, types, modes, owners, sizes, content digests, link targets),
// and prints `key: value` lines with medians and the ratio berth/umoci (lower is faster).
//
// The image (default 256 MiB in 5 gzip layers: per layer one large random file, many 80 KiB files
// and a symlink, plus a last layer of whiteouts and an opaque directory) is generated once into
// -work and reused.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	berth := flag.String("berth", "bin/berth", "berth binary")
	umoci := flag.String("umoci", "umoci", "umoci binary (the anchor)")
	work := flag.String("work", ".cache/bench/image", "scratch directory")
	size := flag.Int64("size", 256<<20, "image bytes (uncompressed)")
	layers := flag.Int("layers", 5, "layers")
	runs := flag.Int("runs", 5, "runs of each tool, interleaved")
	flag.Parse()
	if err := run(context.Background(), *berth, *umoci, *work, *size, *layers, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "imagebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, berth, umoci, work string, size int64, nlayers, runs int) error {
	layout := filepath.Join(work, fmt.Sprintf("layout-%d-%d", size, nlayers))
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
		fmt.Fprintf(os.Stderr, "imagebench: generating a %d MiB image in %d layers\n", size>>20, nlayers)
		if err := generate(layout, size, nlayers); err != nil {
			return err
		}
	}
	out := filepath.Join(work, "out")
	tools := map[string]func(dir string) *exec.Cmd{
		"berth": func(dir string) *exec.Cmd {
			return exec.CommandContext(ctx, berth, "image", "bundle", "oci:"+layout+":v1", dir)
		},
		"umoci": func(dir string) *exec.Cmd {
			os.MkdirAll(dir, 0o755)
			return exec.CommandContext(ctx, umoci, "raw", "unpack", "--image", layout+":v1", filepath.Join(dir, "rootfs"))
		},
	}
	times := map[string][]float64{}
	for r := 0; r < runs; r++ {
		for _, name := range []string{"berth", "umoci"} {
			dir := filepath.Join(out, name)
			os.RemoveAll(dir)
			exec.Command("sync").Run()
			cmd := tools[name](dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s: %w: %s", name, err, stderr.String())
			}
			times[name] = append(times[name], time.Since(t0).Seconds())
		}
	}
	bt, err := listTree(filepath.Join(out, "berth", "rootfs"))
	if err != nil {
		return err
	}
	ut, err := listTree(filepath.Join(out, "umoci", "rootfs"))
	if err != nil {
		return err
	}
	same := 1
	if bt != ut {
		same = 0
		os.WriteFile(filepath.Join(work, "tree-berth.txt"), []byte(bt), 0o644)
		os.WriteFile(filepath.Join(work, "tree-umoci.txt"), []byte(ut), 0o644)
		fmt.Fprintf(os.Stderr, "imagebench: the trees differ: see %s/tree-{berth,umoci}.txt\n", work)
	}
	os.RemoveAll(out)
	b, u := median(times["berth"]), median(times["umoci"])
	fmt.Printf("image_unpack_bytes: %d\n", size)
	fmt.Printf("image_unpack_layers: %d\n", nlayers+1)
	fmt.Printf("image_unpack_runs: %d\n", runs)
	fmt.Printf("berth_unpack_s: %.3f\n", b)
	fmt.Printf("umoci_raw_unpack_s: %.3f\n", u)
	fmt.Printf("berth_unpack_mbs: %.1f\n", float64(size)/(1<<20)/b)
	fmt.Printf("umoci_raw_unpack_mbs: %.1f\n", float64(size)/(1<<20)/u)
	fmt.Printf("unpack_ratio_berth_umoci: %.2f\n", b/u)
	fmt.Printf("unpack_same_tree: %d\n", same)
	if same == 0 {
		return fmt.Errorf("berth and umoci unpacked different trees")
	}
	return nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// generate writes an OCI layout with nlayers data layers and one whiteout layer.
func generate(dir string, size int64, nlayers int) error {
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	per := size / int64(nlayers)
	const small = 80 << 10
	var descs []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i := 0; i < nlayers; i++ {
		nsmall := per / 2 / small
		big := per - nsmall*small
		var entries []entry
		base := fmt.Sprintf("opt/layer%d", i)
		entries = append(entries, entry{name: "opt/", dir: true}, entry{name: base + "/", dir: true}, entry{name: base + "/files/", dir: true})
		entries = append(entries, entry{name: base + "/big.bin", size: big})
		for j := int64(0); j < nsmall; j++ {
			entries = append(entries, entry{name: fmt.Sprintf("%s/files/f%04d", base, j), size: small})
		}
		entries = append(entries, entry{name: fmt.Sprintf("usr/share/l%d/", i), dir: true}, entry{name: fmt.Sprintf("usr/share/l%d/link", i), link: "../../../" + base + "/big.bin"})
		if i == 0 {
			entries = append(entries, entry{name: "gone/", dir: true}, entry{name: "gone/x", size: 10}, entry{name: "opq/", dir: true}, entry{name: "opq/old", size: 10}, entry{name: "del.txt", size: 10})
		}
		d, diff, err := writeLayer(tmp, rng, entries)
		if err != nil {
			return err
		}
		descs, diffIDs = append(descs, d), append(diffIDs, diff)
	}
	d, diff, err := writeLayer(tmp, rng, []entry{{name: ".wh.gone"}, {name: ".wh.del.txt"}, {name: "opq/", dir: true}, {name: "opq/new", size: 10}, {name: "opq/.wh..wh..opq"}})
	if err != nil {
		return err
	}
	descs, diffIDs = append(descs, d), append(diffIDs, diff)
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}}
	cd, err := writeJSON(tmp, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: descs}
	m.SchemaVersion = 2
	md, err := writeJSON(tmp, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return err
	}
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "v1"}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(tmp, "index.json"), ib, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

type entry struct {
	name, link string
	dir        bool
	size       int64
}

func writeLayer(layout string, rng *rand.Rand, entries []entry) (ocispec.Descriptor, digest.Digest, error) {
	f, err := os.CreateTemp(layout, "layer-")
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	blobHash, diffHash := sha256.New(), sha256.New()
	zw, _ := gzip.NewWriterLevel(io.MultiWriter(f, blobHash), gzip.BestSpeed)
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash))
	buf := make([]byte, 1<<20)
	mtime := time.Unix(1700000000, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, ModTime: mtime, Typeflag: tar.TypeReg, Size: e.size}
		switch {
		case e.dir:
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		}
		if err := tw.WriteHeader(h); err != nil {
			return ocispec.Descriptor{}, "", err
		}
		for left := e.size; left > 0; {
			n := min(left, int64(len(buf)))
			for i := 0; i < int(n); i += 8 {
				v := rng.Uint64()
				for k := 0; k < 8 && i+k < int(n); k++ {
					buf[i+k] = byte(v >> (8 * k))
				}
			}
			if _, err := tw.Write(buf[:n]); err != nil {
				return ocispec.Descriptor{}, "", err
			}
			left -= n
		}
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	st, _ := f.Stat()
	dg := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(blobHash.Sum(nil)))
	if err := os.Rename(f.Name(), filepath.Join(layout, "blobs", "sha256", dg.Encoded())); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: dg, Size: st.Size()},
		digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(diffHash.Sum(nil))), nil
}

func writeJSON(layout, mt string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	dg := digest.FromBytes(b)
	if err := os.WriteFile(filepath.Join(layout, "blobs", "sha256", dg.Encoded()), b, 0o644); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dg, Size: int64(len(b))}, nil
}

// listTree describes a tree line by line: path, type, mode, owner, size and sha256 or target.
func listTree(root string) (string, error) {
	var lines []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %s %d:%d", rel, fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			line += " -> " + t
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			line += fmt.Sprintf(" %d %x", fi.Size(), h.Sum(nil))
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n"), err
}
