package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// splitCommand reads a JSON array (["sh","-c","x"]) or, failing that, whitespace-separated words.
func splitCommand(s string) []string {
	var out []string
	if strings.HasPrefix(strings.TrimSpace(s), "[") && json.Unmarshal([]byte(s), &out) == nil {
		return out
	}
	return strings.Fields(s)
}

func imageImportFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	entrypoint := fs.String("entrypoint", "", "Entrypoint: a JSON array or words")
	cmd := fs.String("cmd", "", "Cmd: a JSON array or words")
	user := fs.String("user", "", "User (NAME|UID[:GROUP|GID])")
	workdir := fs.String("workdir", "", "WorkingDir (absolute)")
	stop := fs.String("stop-signal", "", "StopSignal")
	plat := fs.String("platform", image.HostPlatform().String(), "the image's `OS/ARCH[/VARIANT]`")
	reproducible := fs.Bool("reproducible", false, "stamp every entry and the config with --created (default the epoch), for identical digests")
	created := fs.String("created", "", "creation time, RFC 3339")
	var env, labels listFlag
	fs.Var(&env, "env", "`KEY=VALUE` in the image's Env (repeatable)")
	fs.Var(&labels, "label", "`KEY=VALUE` label (repeatable)")
	return func(ctx context.Context, args []string) error {
		if len(args) != 2 {
			return usagef("image import: expected SOURCE NAME, got %d arguments", len(args))
		}
		name, err := image.NormalizeName(args[1])
		if err != nil {
			return err
		}
		store, err := openStore(ctx, *root)
		if err != nil {
			return err
		}
		defer store.Close()
		// A layout or archive is copied as it is; anything else is a root filesystem.
		if r, err := image.ParseRef(args[0]); err == nil && r.Transport != image.TransportStore {
			src, err := image.Open(ctx, r, nil)
			if err != nil {
				return err
			}
			defer src.Close()
			if err := image.CopyToStore(ctx, src, src.Target, store); err != nil {
				return err
			}
			return nameImage(ctx, store, name, src.Target)
		}
		p, err := parsePlatform(*plat)
		if err != nil {
			return err
		}
		o := image.BuildOptions{
			Entrypoint: splitCommand(*entrypoint), Cmd: splitCommand(*cmd), Env: env, User: *user,
			WorkingDir: *workdir, StopSignal: *stop, Platform: p, Reproducible: *reproducible,
		}
		if len(o.Entrypoint) == 0 {
			o.Entrypoint = nil
		}
		if len(o.Cmd) == 0 {
			o.Cmd = nil
		}
		for _, l := range labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				return usagef("image import: --label %q: expected KEY=VALUE", l)
			}
			if o.Labels == nil {
				o.Labels = map[string]string{}
			}
			o.Labels[k] = v
		}
		for _, e := range env {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				return usagef("image import: --env %q: expected KEY=VALUE", e)
			}
		}
		switch {
		case *created != "":
			t, err := time.Parse(time.RFC3339, *created)
			if err != nil {
				return usagef("image import: --created %q: expected RFC 3339 (2006-01-02T15:04:05Z)", *created)
			}
			o.Created = &t
		case *reproducible:
			t := time.Unix(0, 0).UTC()
			o.Created = &t
		}
		desc, err := image.Build(ctx, store, args[0], o)
		if err != nil {
			return err
		}
		return nameImage(ctx, store, name, desc)
	}
}

func nameImage(ctx context.Context, store *content.Store, name string, target ocispec.Descriptor) error {
	if err := store.PutImage(ctx, content.Image{Name: name, Target: target}); err != nil {
		return err
	}
	fmt.Fprintf(stdoutOf(ctx), "%s %s\n", name, target.Digest)
	return nil
}

func imageExportFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	plat := platformFlag(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) != 2 {
			return usagef("image export: expected NAME DESTINATION, got %d arguments", len(args))
		}
		dst, err := image.ParseRef(args[1])
		if err != nil {
			return err
		}
		if dst.Transport == image.TransportStore || dst.Transport == image.TransportDocker {
			return usagef("image export: destination %q: expected oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]", args[1])
		}
		p, err := parsePlatform(*plat)
		if err != nil {
			return err
		}
		img, release, err := openImage(ctx, *root, args[0], p)
		if err != nil {
			return err
		}
		defer release()
		if dst.Name == "" {
			// The name's tag (oci) or the whole name (docker-archive), as skopeo does.
			if dst.Transport == image.TransportDockerArchive {
				dst.Name = img.Name
			} else if i := strings.LastIndexByte(img.Name, ':'); i > strings.LastIndexByte(img.Name, '/') {
				dst.Name = img.Name[i+1:]
			}
		}
		return image.Export(ctx, img.Provider, img.Target, img, dst)
	}
}

func imageLsFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	quiet := fs.Bool("q", false, "names only")
	format := fs.String("format", "table", "`table` or json")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("image ls: unexpected argument %q", args[0])
		}
		store, err := openStore(ctx, *root)
		if err != nil {
			return err
		}
		defer store.Close()
		imgs, err := store.Images(ctx)
		if err != nil {
			return err
		}
		switch {
		case *quiet:
			for _, i := range imgs {
				fmt.Fprintln(stdoutOf(ctx), i.Name)
			}
		case *format == "json":
			if imgs == nil {
				imgs = []content.Image{}
			}
			enc := json.NewEncoder(stdoutOf(ctx))
			enc.SetIndent("", "  ")
			return enc.Encode(imgs)
		case *format == "table":
			tw := tabwriter.NewWriter(stdoutOf(ctx), 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE\tCREATED")
			for _, i := range imgs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Name, i.Target.Digest.Encoded()[:12], humanSize(imageSize(ctx, store, i.Target)), i.Created.Local().Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		default:
			return usagef("image ls: --format %q: expected table or json", *format)
		}
		return nil
	}
}

// imageSize adds up the blobs an image references that are in the store.
func imageSize(ctx context.Context, store *content.Store, target ocispec.Descriptor) int64 {
	var total int64
	_ = image.Walk(ctx, image.StoreProvider{Store: store}, target, func(d ocispec.Descriptor) error {
		if ok, _ := store.Has(ctx, d); ok {
			total += d.Size
		}
		return nil
	})
	return total
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func imageInspectFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	plat := platformFlag(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usagef("image inspect: expected IMAGE, got %d arguments", len(args))
		}
		p, err := parsePlatform(*plat)
		if err != nil {
			return err
		}
		img, release, err := openImage(ctx, *root, args[0], p)
		if err != nil {
			return err
		}
		defer release()
		out := struct {
			Name           string             `json:"name"`
			Target         ocispec.Descriptor `json:"target"`
			ManifestDigest string             `json:"manifestDigest"`
			Manifest       ocispec.Manifest   `json:"manifest"`
			Config         ocispec.Image      `json:"config"`
		}{img.Name, img.Target, img.ManifestDesc.Digest.String(), img.Manifest, img.Config}
		enc := json.NewEncoder(stdoutOf(ctx))
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
}

func imageTagFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) != 2 {
			return usagef("image tag: expected SOURCE TARGET, got %d arguments", len(args))
		}
		src, err := image.NormalizeName(args[0])
		if err != nil {
			return err
		}
		dst, err := image.NormalizeName(args[1])
		if err != nil {
			return err
		}
		store, err := openStore(ctx, *root)
		if err != nil {
			return err
		}
		defer store.Close()
		img, err := store.Image(ctx, src)
		if err != nil {
			return err
		}
		return store.PutImage(ctx, content.Image{Name: dst, Target: img.Target})
	}
}

func imageRmFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) == 0 {
			return usagef("image rm: expected at least one NAME")
		}
		store, err := openStore(ctx, *root)
		if err != nil {
			return err
		}
		defer store.Close()
		var errs []error
		for _, a := range args {
			name, err := image.NormalizeName(a)
			if err == nil {
				err = store.DeleteImage(ctx, name)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintln(stdoutOf(ctx), name)
		}
		return errors.Join(errs...)
	}
}

func imageGCFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	dry := fs.Bool("dry-run", false, "print what would be removed, remove nothing")
	grace := fs.Duration("grace", 10*time.Minute, "keep content younger than this (a pull in progress has not named its image yet)")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("image gc: unexpected argument %q", args[0])
		}
		store, err := openStore(ctx, *root)
		if err != nil {
			return err
		}
		defer store.Close()
		res, err := store.GC(ctx, content.GCOptions{DryRun: *dry, Grace: max(*grace, time.Nanosecond)})
		if err != nil {
			return err
		}
		verb := "removed"
		if *dry {
			verb = "would remove"
		}
		for _, d := range res.Blobs {
			fmt.Fprintln(stdoutOf(ctx), d)
		}
		fmt.Fprintf(os.Stderr, "%s %d blobs (%s) and %d abandoned ingest files\n", verb, len(res.Blobs), humanSize(res.Bytes), res.IngestFiles)
		if *dry {
			return nil
		}
		return pruneSnapshots(ctx, *root, store)
	}
}

// pruneSnapshots removes unpacked layers that no store image (for this machine's platform) uses and
// no mounted snapshot stands on.
func pruneSnapshots(ctx context.Context, root string, store *content.Store) error {
	if _, err := os.Stat(filepath.Join(root, "snapshots")); err != nil || os.Geteuid() != 0 {
		return nil
	}
	sn, err := openSnapshotter(ctx, root, "")
	if err != nil {
		return err
	}
	imgs, err := store.Images(ctx)
	if err != nil {
		return err
	}
	var keep []digest.Digest
	for _, i := range imgs {
		img, err := image.Resolve(ctx, image.StoreProvider{Store: store}, i.Name, i.Target, image.HostPlatform())
		if err != nil {
			continue
		}
		if chains := snapshot.ChainIDs(img.Config.RootFS.DiffIDs); len(chains) > 0 {
			keep = append(keep, chains[len(chains)-1])
		}
	}
	removed, err := sn.Prune(ctx, keep)
	if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "removed %d unpacked layers\n", len(removed))
	}
	return err
}
