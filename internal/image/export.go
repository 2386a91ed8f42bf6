package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Export writes the image target (with everything it references) read from p to the destination r
// names: an OCI layout (created or added to), an oci-archive or a docker-archive. A docker-archive
// holds one platform's image: img must then be resolved; for the others it may be nil.
func Export(ctx context.Context, p Provider, target ocispec.Descriptor, img *Image, r Ref) error {
	switch r.Transport {
	case TransportOCI:
		return exportLayout(ctx, p, target, r.Path, r.Name)
	case TransportOCIArchive:
		return writeAtomically(r.Path, func(w io.Writer) error { return exportOCIArchive(ctx, p, target, w, r.Name) })
	case TransportDockerArchive:
		if img == nil {
			return errors.New("docker-archive export needs a resolved image")
		}
		return writeAtomically(r.Path, func(w io.Writer) error { return exportDockerArchive(ctx, img, w, r.Name) })
	}
	return fmt.Errorf("export to %q: expected oci:, oci-archive: or docker-archive: %w", r.String(), errdefs.ErrInvalidArgument)
}

func blobPath(d ocispec.Descriptor) string {
	return path.Join(ocispec.ImageBlobsDir, d.Digest.Algorithm().String(), d.Digest.Encoded())
}

func exportLayout(ctx context.Context, p Provider, target ocispec.Descriptor, dir, tag string) error {
	var idx ocispec.Index
	if l, err := OpenLayout(dir); err == nil {
		idx = l.Index
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return err
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("layout: %w", err)
		}
		lb, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := writeFileAtomically(filepath.Join(dir, ocispec.ImageLayoutFile), lb); err != nil {
			return err
		}
		idx = ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
		idx.SchemaVersion = 2
	}
	err := Walk(ctx, p, target, func(d ocispec.Descriptor) error {
		dst := filepath.Join(dir, blobPath(d))
		if st, err := os.Stat(dst); err == nil && st.Size() == d.Size {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		rc, err := p.Open(ctx, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		return writeAtomically(dst, func(w io.Writer) error {
			return copyVerified(w, rc, d)
		})
	})
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	entry := target
	if tag != "" {
		entry.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if tag != "" && m.Annotations[ocispec.AnnotationRefName] == tag {
			continue
		}
		if tag == "" && m.Digest == target.Digest && m.Annotations[ocispec.AnnotationRefName] == "" {
			continue
		}
		kept = append(kept, m)
	}
	idx.Manifests = append(kept, entry)
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return writeFileAtomically(filepath.Join(dir, ocispec.ImageIndexFile), ib)
}

func exportOCIArchive(ctx context.Context, p Provider, target ocispec.Descriptor, w io.Writer, tag string) error {
	tw := tar.NewWriter(w)
	now := time.Now().UTC().Truncate(time.Second)
	dirs := map[string]bool{}
	mkdir := func(d string) error {
		if dirs[d] {
			return nil
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now})
	}
	file := func(name string, size int64, body io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: now}); err != nil {
			return err
		}
		_, err := io.Copy(tw, body)
		return err
	}
	lb, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := file(ocispec.ImageLayoutFile, int64(len(lb)), bytesReader(lb)); err != nil {
		return err
	}
	err := Walk(ctx, p, target, func(d ocispec.Descriptor) error {
		if err := mkdir(ocispec.ImageBlobsDir); err != nil {
			return err
		}
		if err := mkdir(path.Dir(blobPath(d))); err != nil {
			return err
		}
		rc, err := p.Open(ctx, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := tw.WriteHeader(&tar.Header{Name: blobPath(d), Typeflag: tar.TypeReg, Mode: 0o644, Size: d.Size, ModTime: now}); err != nil {
			return err
		}
		return copyVerified(tw, rc, d)
	})
	if err != nil {
		return err
	}
	entry := target
	if tag != "" {
		entry.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{entry}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	if err := file(ocispec.ImageIndexFile, int64(len(ib)), bytesReader(ib)); err != nil {
		return err
	}
	return tw.Close()
}

// exportDockerArchive writes `docker save`'s format: the config as HEX.json, each layer
// uncompressed as DIFFIDHEX.tar, and manifest.json tying them to the RepoTag.
func exportDockerArchive(ctx context.Context, img *Image, w io.Writer, repoTag string) error {
	tw := tar.NewWriter(w)
	now := time.Now().UTC().Truncate(time.Second)
	cb, err := ReadBlob(ctx, img.Provider, img.ConfigDesc, MaxConfigSize)
	if err != nil {
		return err
	}
	cfgName := img.ConfigDesc.Digest.Encoded() + ".json"
	if err := tw.WriteHeader(&tar.Header{Name: cfgName, Mode: 0o644, Size: int64(len(cb)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(cb); err != nil {
		return err
	}
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: cfgName, RepoTags: []string{}}
	if repoTag != "" {
		entry.RepoTags = []string{repoTag}
	}
	written := map[string]bool{}
	for i, l := range img.Layers() {
		name := l.DiffID.Encoded() + ".tar"
		entry.Layers = append(entry.Layers, name)
		if written[name] {
			continue
		}
		written[name] = true
		if err := writeUncompressedLayer(ctx, tw, img.Provider, l, name, now); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	mb, err := json.Marshal([]any{entry})
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(mb)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	return tw.Close()
}

// writeUncompressedLayer decompresses a layer to a temporary file (the tar header needs its size)
// and copies it into tw.
func writeUncompressedLayer(ctx context.Context, tw *tar.Writer, p Provider, l Layer, name string, now time.Time) error {
	rc, err := p.Open(ctx, l.Desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	dr, err := archive.DecompressAuto(rc)
	if err != nil {
		return err
	}
	defer dr.Close()
	tmp, err := os.CreateTemp("", "berth-layer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := l.DiffID.Algorithm().Hash()
	n, err := io.Copy(io.MultiWriter(tmp, h), dr)
	if err != nil {
		return err
	}
	if l.DiffID != "" && fmt.Sprintf("%s:%x", l.DiffID.Algorithm(), h.Sum(nil)) != l.DiffID.String() {
		return fmt.Errorf("uncompressed digest differs from the config's diff_id %s: %w", l.DiffID, errdefs.ErrInvalidArgument)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: n, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, tmp)
	return err
}

// copyVerified copies exactly d.Size bytes of rc to w and checks the digest.
func copyVerified(w io.Writer, rc io.Reader, d ocispec.Descriptor) error {
	h := d.Digest.Algorithm().Hash()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(rc, d.Size+1))
	if err != nil {
		return err
	}
	if n != d.Size {
		return fmt.Errorf("blob %s: %d bytes, the descriptor says %d: %w", d.Digest, n, d.Size, errdefs.ErrInvalidArgument)
	}
	if got := fmt.Sprintf("%s:%x", d.Digest.Algorithm(), h.Sum(nil)); got != d.Digest.String() {
		return fmt.Errorf("blob %s: its content's digest is %s: %w", d.Digest, got, errdefs.ErrInvalidArgument)
	}
	return nil
}

// writeAtomically writes a file through a temporary sibling, fsynced and renamed.
func writeAtomically(file string, fn func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fn(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	ok = true
	return nil
}

func writeFileAtomically(file string, b []byte) error {
	return writeAtomically(file, func(w io.Writer) error { _, err := w.Write(b); return err })
}
