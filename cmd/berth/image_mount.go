package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
)

func openSnapshotter(ctx context.Context, root, driver string) (*snapshot.Snapshotter, error) {
	return snapshot.New(ctx, snapshot.Config{Root: filepath.Join(root, "snapshots"), Driver: snapshot.Driver(driver)})
}

// mountKey names the writable snapshot behind a mount point.
func mountKey(target string) (string, error) {
	abs, err := filepath.Abs(target)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	return "mnt-" + hex.EncodeToString(sum[:12]), nil
}

func imageMountFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	plat := platformFlag(fs)
	driver := fs.String("driver", "", "overlay or copy (default: overlay where the kernel mounts it)")
	return func(ctx context.Context, args []string) error {
		if len(args) != 2 {
			return usagef("image mount: expected IMAGE DIR, got %d arguments", len(args))
		}
		p, err := parsePlatform(*plat)
		if err != nil {
			return err
		}
		key, err := mountKey(args[1])
		if err != nil {
			return err
		}
		img, release, err := openImage(ctx, *root, args[0], p)
		if err != nil {
			return err
		}
		defer release()
		sn, err := openSnapshotter(ctx, *root, *driver)
		if err != nil {
			return err
		}
		top, err := sn.Unpack(ctx, img.Provider, img.Layers())
		if err != nil {
			return err
		}
		mounts, err := sn.Prepare(ctx, key, top)
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			// Kept by `unmount --keep`: mounted again with its changes.
			mounts, err = sn.Mounts(ctx, key)
		}
		if err != nil {
			return err
		}
		if err := snapshot.MountAll(mounts, args[1]); err != nil {
			sn.Remove(ctx, key)
			return err
		}
		fmt.Fprintf(stdoutOf(ctx), "%s mounted on %s (%s, snapshot %s)\n", img.Name, args[1], sn.Driver(), key)
		return nil
	}
}

func imageUnmountFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	keep := fs.Bool("keep", false, "keep the snapshot's changes (mount it again with the same DIR)")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usagef("image unmount: expected DIR, got %d arguments", len(args))
		}
		key, err := mountKey(args[0])
		if err != nil {
			return err
		}
		if err := snapshot.Unmount(args[0]); err != nil {
			return err
		}
		if *keep {
			return nil
		}
		sn, err := openSnapshotter(ctx, *root, "")
		if err != nil {
			return err
		}
		return sn.Remove(ctx, key)
	}
}
