package testimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageConfig is what an image says about how to run it.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
}

// layerTar writes dir as one uncompressed layer: regular files, directories, symlinks and hard links
// (busybox's applets), with their modes and owners. Times are fixed so that the same tree gives the
// same digest.
func layerTar(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[[2]uint64]string{} // (dev, ino) → first name, for hard links
	epoch := time.Unix(0, 0)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = epoch, epoch, epoch
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		st, _ := info.Sys().(*syscall.Stat_t)
		if st != nil && info.Mode().IsRegular() && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := seen[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
				return tw.WriteHeader(hdr)
			}
			seen[key] = rel
		}
		if !info.Mode().IsRegular() && !info.IsDir() && info.Mode()&os.ModeSymlink == 0 {
			return nil // devices, sockets, fifos: not in test images
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sha(b []byte) digest.Digest {
	s := sha256.Sum256(b)
	return digest.Digest("sha256:" + hex.EncodeToString(s[:]))
}

type blob struct {
	name string
	data []byte
}

// image builds the config and manifest of a one-layer image of rootfs.
func image(rootfs string, cfg ImageConfig) (layer, config []byte, err error) {
	if layer, err = layerTar(rootfs); err != nil {
		return nil, nil, err
	}
	img := ocispec.Image{
		Platform: ocispec.Platform{Architecture: goArch(), OS: "linux"},
		Config: ocispec.ImageConfig{
			Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{sha(layer)}},
	}
	if config, err = json.Marshal(img); err != nil {
		return nil, nil, err
	}
	return layer, config, nil
}

// OCIArchive writes an oci-archive (a tar of an OCI image layout) holding a one-layer image of rootfs,
// tagged ref (e.g. "localhost/busybox:latest"), as skopeo's oci-archive transport and containerd's
// `ctr images import` read it.
func OCIArchive(rootfs, out, ref string, cfg ImageConfig) error {
	layer, config, err := image(rootfs, cfg)
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: sha(config), Size: int64(len(config))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: sha(layer), Size: int64(len(layer))}},
	})
	if err != nil {
		return err
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{
			MediaType: ocispec.MediaTypeImageManifest, Digest: sha(manifest), Size: int64(len(manifest)),
			Annotations: map[string]string{ocispec.AnnotationRefName: ref},
		}},
	})
	if err != nil {
		return err
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	blobs := []blob{{ocispec.ImageLayoutFile, layout}, {"index.json", index}}
	for _, b := range [][]byte{layer, config, manifest} {
		blobs = append(blobs, blob{"blobs/sha256/" + sha(b).Encoded(), b})
	}
	return writeTar(out, blobs)
}

// DockerArchive writes a docker-archive (`docker save` format) holding a one-layer image of rootfs
// tagged repoTag, as `podman load` and `docker load` read it.
func DockerArchive(rootfs, out, repoTag string, cfg ImageConfig) error {
	layer, config, err := image(rootfs, cfg)
	if err != nil {
		return err
	}
	layerName := sha(layer).Encoded() + "/layer.tar"
	configName := sha(config).Encoded() + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config": configName, "RepoTags": []string{repoTag}, "Layers": []string{layerName},
	}})
	if err != nil {
		return err
	}
	return writeTar(out, []blob{{configName, config}, {layerName, layer}, {"manifest.json", manifest}})
}

func writeTar(out string, blobs []blob) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	for _, b := range blobs {
		if d := filepath.Dir(b.name); d != "." && !dirs[d] {
			parts := strings.Split(d, "/")
			for i := range parts {
				p := strings.Join(parts[:i+1], "/")
				if !dirs[p] {
					dirs[p] = true
					if err := tw.WriteHeader(&tar.Header{Name: p + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
						f.Close()
						return err
					}
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: b.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b.data))}); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(b.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
