package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/image"
)

func imageCommand() *command {
	return &command{
		name:    "image",
		summary: "OCI images: the local store, layouts, archives, bundles",
		subs: []*command{
			{name: "pull", summary: "pull an image from a registry into the store", usage: "HOST/NAME[:TAG|@DIGEST]", flags: imagePullFlags},
			{name: "push", summary: "push a store image (or a layout or archive) to a registry", usage: "IMAGE [HOST/NAME[:TAG]]", flags: imagePushFlags},
			{name: "bundle", summary: "write a runtime bundle (rootfs + config.json) from an image", usage: "IMAGE DIR [-- ARGS...]", flags: imageBundleFlags},
			{name: "mount", summary: "assemble an image's root filesystem from its unpacked layers (overlayfs) on DIR", usage: "IMAGE DIR", flags: imageMountFlags},
			{name: "unmount", summary: "unmount DIR and drop its writable snapshot", usage: "DIR", flags: imageUnmountFlags},
			{name: "import", summary: "build an image from a root filesystem directory or tar", usage: "DIR|TAR NAME", flags: imageImportFlags},
			{name: "export", summary: "write a store image to a layout or archive", usage: "NAME oci:DIR[:TAG]|oci-archive:FILE[:TAG]|docker-archive:FILE[:NAME:TAG]", flags: imageExportFlags},
			{name: "ls", summary: "list the store's images", flags: imageLsFlags},
			{name: "inspect", summary: "print an image's manifest, config and descriptor as JSON", usage: "IMAGE", flags: imageInspectFlags},
			{name: "tag", summary: "give a store image another name", usage: "SOURCE TARGET", flags: imageTagFlags},
			{name: "rm", summary: "remove names from the store (content goes with gc)", usage: "NAME...", flags: imageRmFlags},
			{name: "gc", summary: "remove unreferenced content from the store", flags: imageGCFlags},
		},
	}
}

// defaultRoot is where berth keeps its state: $BERTH_ROOT, else /var/lib/berth for root and
// $XDG_DATA_HOME/berth (~/.local/share/berth) for others.
func defaultRoot() string {
	if r := os.Getenv("BERTH_ROOT"); r != "" {
		return r
	}
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "berth")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "berth")
}

// rootFlag declares --root on fs.
func rootFlag(fs *flag.FlagSet) *string {
	return fs.String("root", defaultRoot(), "berth's state `DIR` (content store under DIR/content; env BERTH_ROOT)")
}

func openStore(ctx context.Context, root string) (*content.Store, error) {
	return content.Open(ctx, content.Config{Root: filepath.Join(root, "content")})
}

// openImage resolves an image reference for reading: the store is opened only for store names.
func openImage(ctx context.Context, root, ref string, platform image.Platform) (*image.Image, func(), error) {
	r, err := image.ParseRef(ref)
	if err != nil {
		return nil, nil, err
	}
	var store *content.Store
	if r.Transport == image.TransportStore {
		if store, err = openStore(ctx, root); err != nil {
			return nil, nil, err
		}
	}
	src, err := image.Open(ctx, r, store)
	if err != nil {
		if store != nil {
			store.Close()
		}
		return nil, nil, err
	}
	release := func() {
		src.Close()
		if store != nil {
			store.Close()
		}
	}
	img, err := image.Resolve(ctx, src, r.String(), src.Target, platform)
	if err != nil {
		release()
		return nil, nil, err
	}
	return img, release, nil
}

// platformFlag declares --platform on fs.
func platformFlag(fs *flag.FlagSet) *string {
	return fs.String("platform", image.HostPlatform().String(), "`OS/ARCH[/VARIANT]` to choose from a multi-platform image")
}

func parsePlatform(s string) (image.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return image.Platform{}, usagef("--platform %q: expected OS/ARCH or OS/ARCH/VARIANT", s)
	}
	p := image.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func imageBundleFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	plat := platformFlag(fs)
	tty := fs.Bool("tty", false, "the process gets a terminal")
	rootless := fs.Bool("rootless", os.Geteuid() != 0, "map the caller to root in a user namespace; files keep the caller's ownership")
	entrypoint := fs.String("entrypoint", "", "replace the image's Entrypoint (a single program; give its arguments after --)")
	return func(ctx context.Context, args []string) error {
		if len(args) < 2 {
			return usagef("image bundle: expected IMAGE DIR, got %d arguments", len(args))
		}
		p, err := parsePlatform(*plat)
		if err != nil {
			return err
		}
		var o image.BundleOptions
		o.Spec.Terminal = *tty
		if rest := args[2:]; len(rest) > 0 {
			if rest[0] == "--" {
				rest = rest[1:]
			}
			o.Spec.Args = rest
		}
		if *entrypoint != "" {
			o.Spec.Entrypoint = []string{*entrypoint}
		}
		if *rootless {
			o.Spec.Rootless, o.Spec.UID, o.Spec.GID = true, os.Getuid(), os.Getgid()
			o.Unpack.NoChown = os.Geteuid() != 0
		}
		img, release, err := openImage(ctx, *root, args[0], p)
		if err != nil {
			return err
		}
		defer release()
		return image.Bundle(ctx, img, args[1], o)
	}
}
