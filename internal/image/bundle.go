package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
)

// BundleOptions tune Bundle.
type BundleOptions struct {
	Spec   SpecOptions
	Unpack UnpackOptions
}

// Bundle writes an OCI runtime bundle for img in dir: the layers unpacked into dir/rootfs and a
// config.json made from the image config. dir must not exist or be empty; on failure what was
// written is removed.
func Bundle(ctx context.Context, img *Image, dir string, o BundleOptions) (err error) {
	if ents, rerr := os.ReadDir(dir); rerr == nil && len(ents) > 0 {
		return fmt.Errorf("bundle directory %s is not empty: %w", dir, errdefs.ErrAlreadyExists)
	} else if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return fmt.Errorf("bundle directory: %w", rerr)
	}
	created := false
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("bundle directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o711); err == nil {
		created = true
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("bundle directory: %w", err)
	}
	root, staging, err := stageRootfs(dir)
	if err != nil {
		return fmt.Errorf("bundle rootfs: %w", err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	defer func() {
		os.RemoveAll(staging)
		if err == nil {
			return
		}
		os.RemoveAll(rootfs)
		os.Remove(filepath.Join(dir, "config.json"))
		if created {
			os.Remove(dir)
		}
	}()
	if err := Unpack(ctx, img.Provider, img.Layers(), root, o.Unpack); err != nil {
		return fmt.Errorf("unpack %s: %w", img.Name, err)
	}
	spec, err := Spec(img.Config, root, o.Spec)
	if err != nil {
		return fmt.Errorf("%s: %w", img.Name, err)
	}
	if err := os.Rename(root, rootfs); err != nil {
		return fmt.Errorf("bundle rootfs: %w", err)
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".config.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("bundle config: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "config.json")); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("bundle config: %w", err)
	}
	return nil
}
