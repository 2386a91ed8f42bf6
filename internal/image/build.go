package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
)

// BuildOptions describe the image Build makes.
type BuildOptions struct {
	Entrypoint, Cmd []string
	Env             []string
	User            string
	WorkingDir      string
	Labels          map[string]string
	StopSignal      string
	Platform        Platform // default: the host's
	// Created stamps the config and, with Reproducible, every layer entry (default: now).
	Created      *time.Time
	Reproducible bool
}

// Build makes a one-layer image from src (a root filesystem directory, or a layer tar, compressed or
// not) and the config in o, and writes it to the store. It returns the manifest's descriptor; naming
// it is the caller's.
func Build(ctx context.Context, store *content.Store, src string, o BuildOptions) (ocispec.Descriptor, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image source: %w", err)
	}
	created := time.Now().UTC().Truncate(time.Second)
	if o.Created != nil {
		created = o.Created.UTC()
	}
	if o.Platform.OS == "" {
		o.Platform = HostPlatform()
	}
	var layer ocispec.Descriptor
	var diffID digest.Digest
	if fi.IsDir() {
		var epoch *time.Time
		if o.Reproducible {
			epoch = &created
		}
		layer, diffID, err = storeLayerFromDir(ctx, store, src, epoch)
	} else {
		layer, diffID, err = storeLayerFromFile(ctx, store, src)
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: o.Platform.OS, Architecture: o.Platform.Architecture, Variant: o.Platform.Variant},
		Config: ocispec.ImageConfig{
			User: o.User, Env: o.Env, Entrypoint: o.Entrypoint, Cmd: o.Cmd, WorkingDir: o.WorkingDir,
			Labels: o.Labels, StopSignal: o.StopSignal,
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []ocispec.History{{Created: &created, CreatedBy: "berth image import", Comment: "from " + src}},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cdesc, err := store.WriteBytes(ctx, ocispec.MediaTypeImageConfig, cb)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mdesc, err := store.WriteBytes(ctx, ocispec.MediaTypeImageManifest, mb)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mdesc.Platform = &cfg.Platform
	return mdesc, nil
}

// storeLayerFromDir tars dir, gzips it and stores it, hashing the tar on the way for the diff_id.
func storeLayerFromDir(ctx context.Context, store *content.Store, dir string, epoch *time.Time) (ocispec.Descriptor, digest.Digest, error) {
	pr, pw := io.Pipe()
	diff := digest.SHA256.Digester()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		err := WriteLayer(ctx, dir, io.MultiWriter(zw, diff.Hash()), epoch)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	desc, err := store.Write(ctx, digest.SHA256, pr)
	pr.CloseWithError(err) // stops the writer if the store gave up
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc.MediaType = ocispec.MediaTypeImageLayerGzip
	return desc, diff.Digest(), nil
}

// storeLayerFromFile stores a layer tar as it is (compressed or not), decompressing a copy of the
// stream to compute the diff_id.
func storeLayerFromFile(ctx context.Context, store *content.Store, file string) (ocispec.Descriptor, digest.Digest, error) {
	f, err := os.Open(file)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("layer tar: %w", err)
	}
	defer f.Close()
	comp, br, err := archive.Detect(f)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	mt := map[archive.Compression]string{
		archive.Uncompressed: ocispec.MediaTypeImageLayer,
		archive.Gzip:         ocispec.MediaTypeImageLayerGzip,
		archive.Zstd:         ocispec.MediaTypeImageLayerZstd,
	}[comp]
	pr, pw := io.Pipe()
	diffc := make(chan digest.Digest, 1)
	errc := make(chan error, 1)
	go func() {
		d := digest.SHA256.Digester()
		dr, err := archive.Decompress(pr, comp)
		if err == nil {
			err = checkTar(io.TeeReader(dr, d.Hash()))
			if err == nil {
				// The diff_id covers every byte, the end-of-archive padding included.
				_, err = io.Copy(d.Hash(), dr)
			}
			dr.Close()
		}
		// Whatever follows the compressed stream still has to pass through the pipe.
		io.Copy(io.Discard, pr)
		if err != nil {
			err = fmt.Errorf("layer tar %s: %w: %w", file, err, errdefs.ErrInvalidArgument)
		}
		pr.CloseWithError(err)
		errc <- err
		diffc <- d.Digest()
	}()
	desc, err := store.Write(ctx, digest.SHA256, io.TeeReader(br, pw))
	pw.CloseWithError(err)
	if derr := <-errc; err == nil {
		err = derr
	}
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc.MediaType = mt
	return desc, <-diffc, nil
}

// checkTar reads a tar stream through, so that a file that is not a layer is refused.
func checkTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		_, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil // an empty layer is a layer
		}
		if err != nil {
			return fmt.Errorf("not a tar archive: %w", err)
		}
	}
}
