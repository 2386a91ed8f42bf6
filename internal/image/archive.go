package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
)

// tarIndex lets the blobs of an uncompressed tar be read in place, as sections of the file: an
// archive is never extracted to be read.
type tarIndex struct {
	f     *os.File
	files map[string]section
}

type section struct{ off, size int64 }

// countingReader tracks the offset in the file as the tar reader goes; it keeps Seek so that the
// tar reader skips file contents instead of reading them.
type countingReader struct {
	f   *os.File
	off int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.off += int64(n)
	return n, err
}

func (c *countingReader) Seek(off int64, whence int) (int64, error) {
	n, err := c.f.Seek(off, whence)
	if err == nil {
		c.off = n
	}
	return n, err
}

func openTarIndex(file string) (*tarIndex, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	var magic [6]byte
	if n, _ := f.ReadAt(magic[:], 0); archive.Sniff(magic[:n]) != archive.Uncompressed {
		f.Close()
		return nil, fmt.Errorf("%s is compressed: decompress it first (berth reads archives in place): %w", file, errdefs.ErrInvalidArgument)
	}
	cr := &countingReader{f: f}
	tr := tar.NewReader(cr)
	t := &tarIndex{f: f, files: map[string]section{}}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read archive %s: %w", file, err)
		}
		if hdr.Typeflag != tar.TypeReg { // the reader turns the old TypeRegA into TypeReg
			continue
		}
		t.files[path.Clean(hdr.Name)] = section{cr.off, hdr.Size}
	}
	return t, nil
}

func (t *tarIndex) open(name string) (io.ReadCloser, error) {
	s, ok := t.files[path.Clean(name)]
	if !ok {
		return nil, fmt.Errorf("%s is not in the archive %s: %w", name, t.f.Name(), errdefs.ErrNotFound)
	}
	return io.NopCloser(io.NewSectionReader(t.f, s.off, s.size)), nil
}

func (t *tarIndex) read(name string, max int64) ([]byte, error) {
	s, ok := t.files[path.Clean(name)]
	if !ok {
		return nil, fmt.Errorf("%s is not in the archive %s: %w", name, t.f.Name(), errdefs.ErrNotFound)
	}
	if s.size > max {
		return nil, fmt.Errorf("%s in %s: %d bytes, more than %d: %w", name, t.f.Name(), s.size, max, errdefs.ErrInvalidArgument)
	}
	b := make([]byte, s.size)
	_, err := t.f.ReadAt(b, s.off)
	return b, err
}

// OCIArchive is an oci-archive: a tar of an OCI image layout.
type OCIArchive struct {
	t     *tarIndex
	Index ocispec.Index
}

var _ Provider = (*OCIArchive)(nil)

// OpenOCIArchive indexes file; Close releases it.
func OpenOCIArchive(file string) (*OCIArchive, error) {
	t, err := openTarIndex(file)
	if err != nil {
		return nil, fmt.Errorf("oci-archive: %w", err)
	}
	a := &OCIArchive{t: t}
	if _, err := t.read(ocispec.ImageLayoutFile, 1<<10); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("oci-archive %s: not an OCI layout: %w", file, err)
	}
	b, err := t.read(ocispec.ImageIndexFile, MaxManifestSize)
	if err == nil {
		err = json.Unmarshal(b, &a.Index)
	}
	if err != nil {
		t.f.Close()
		return nil, fmt.Errorf("oci-archive %s: index.json: %w", file, err)
	}
	return a, nil
}

// Open opens a blob of the archive.
func (a *OCIArchive) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("digest %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	return a.t.open(path.Join(ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded()))
}

// Find returns the entry named tag (or the only one).
func (a *OCIArchive) Find(tag string) (ocispec.Descriptor, error) {
	return findInIndex(a.Index, tag, "the archive "+a.t.f.Name())
}

// Close releases the file.
func (a *OCIArchive) Close() error { return a.t.f.Close() }

// DockerArchive is a `docker save` tar: manifest.json names each image's config and layer files.
// Its images are presented as OCI manifests built from those files; for an uncompressed layer the
// digest is its diff_id, for a compressed one it is computed when the archive is opened.
type DockerArchive struct {
	t      *tarIndex
	images []dockerImage
	blobs  map[digest.Digest]string // digest → file in the archive
	docs   map[digest.Digest][]byte // synthesized manifests
}

type dockerImage struct {
	tags     []string
	manifest ocispec.Descriptor
}

type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

var _ Provider = (*DockerArchive)(nil)

// OpenDockerArchive indexes file; Close releases it.
func OpenDockerArchive(file string) (*DockerArchive, error) {
	t, err := openTarIndex(file)
	if err != nil {
		return nil, fmt.Errorf("docker-archive: %w", err)
	}
	a := &DockerArchive{t: t, blobs: map[digest.Digest]string{}, docs: map[digest.Digest][]byte{}}
	if err := a.load(); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("docker-archive %s: %w", file, err)
	}
	return a, nil
}

func (a *DockerArchive) load() error {
	b, err := a.t.read("manifest.json", MaxManifestSize)
	if err != nil {
		return err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return fmt.Errorf("manifest.json: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(entries) == 0 {
		return fmt.Errorf("manifest.json lists no image: %w", errdefs.ErrInvalidArgument)
	}
	for i, e := range entries {
		cb, err := a.t.read(e.Config, MaxConfigSize)
		if err != nil {
			return fmt.Errorf("manifest.json[%d].Config: %w", i, err)
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(cb, &cfg); err != nil {
			return fmt.Errorf("config %s: %w: %w", e.Config, err, errdefs.ErrInvalidArgument)
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return fmt.Errorf("manifest.json[%d]: %d layers, its config lists %d diff_ids: %w", i, len(e.Layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
		m.SchemaVersion = 2
		m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
		a.blobs[m.Config.Digest] = e.Config
		for j, l := range e.Layers {
			desc, err := a.layerDesc(l, cfg.RootFS.DiffIDs[j])
			if err != nil {
				return fmt.Errorf("manifest.json[%d].Layers[%d]: %w", i, j, err)
			}
			m.Layers = append(m.Layers, desc)
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
		a.docs[md.Digest] = mb
		a.images = append(a.images, dockerImage{tags: e.RepoTags, manifest: md})
	}
	return nil
}

func (a *DockerArchive) layerDesc(name string, diffID digest.Digest) (ocispec.Descriptor, error) {
	s, ok := a.t.files[path.Clean(name)]
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("%s is not in the archive: %w", name, errdefs.ErrNotFound)
	}
	var magic [6]byte
	n, _ := a.t.f.ReadAt(magic[:], s.off)
	comp := archive.Sniff(magic[:n])
	desc := ocispec.Descriptor{Size: s.size}
	switch comp {
	case archive.Uncompressed:
		desc.MediaType, desc.Digest = ocispec.MediaTypeImageLayer, diffID
	case archive.Gzip, archive.Zstd:
		desc.MediaType = ocispec.MediaTypeImageLayerGzip
		if comp == archive.Zstd {
			desc.MediaType = ocispec.MediaTypeImageLayerZstd
		}
		h := digest.SHA256.Digester()
		if _, err := io.Copy(h.Hash(), io.NewSectionReader(a.t.f, s.off, s.size)); err != nil {
			return desc, err
		}
		desc.Digest = h.Digest()
	}
	a.blobs[desc.Digest] = name
	return desc, nil
}

// Open opens a blob (or a synthesized manifest) of the archive.
func (a *DockerArchive) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if b, ok := a.docs[desc.Digest]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	name, ok := a.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s not in the archive %s: %w", desc.Digest, a.t.f.Name(), errdefs.ErrNotFound)
	}
	return a.t.open(name)
}

// Find returns the manifest of the image tagged ref (as in RepoTags, e.g. "busybox:latest"), or of the
// only image when ref is empty.
func (a *DockerArchive) Find(ref string) (ocispec.Descriptor, error) {
	var all []string
	for _, im := range a.images {
		for _, t := range im.tags {
			if t == ref {
				return im.manifest, nil
			}
			all = append(all, t)
		}
	}
	if ref == "" {
		if len(a.images) == 1 {
			return a.images[0].manifest, nil
		}
		return ocispec.Descriptor{}, fmt.Errorf("the archive %s holds %d images (%v): name one: %w", a.t.f.Name(), len(a.images), all, errdefs.ErrInvalidArgument)
	}
	return ocispec.Descriptor{}, fmt.Errorf("no image %q in the archive %s (it has %v): %w", ref, a.t.f.Name(), all, errdefs.ErrNotFound)
}

// Tags lists the RepoTags of the archive's images, by manifest digest.
func (a *DockerArchive) Tags() map[digest.Digest][]string {
	out := map[digest.Digest][]string{}
	for _, im := range a.images {
		out[im.manifest.Digest] = im.tags
	}
	return out
}

// Close releases the file.
func (a *DockerArchive) Close() error { return a.t.f.Close() }
