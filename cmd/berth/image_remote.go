package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/term"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry/client"
)

// registryFlags are the flags pull and push share.
type registryFlags struct {
	insecure listFlag
	authFile *string
	quiet    *bool
	conc     *int
}

func declareRegistryFlags(fs *flag.FlagSet) *registryFlags {
	r := &registryFlags{}
	fs.Var(&r.insecure, "insecure", "`HOST[:PORT]` to speak plain HTTP to (repeatable; loopback always is)")
	r.authFile = fs.String("authfile", "", "credentials `FILE` (containers auth.json or docker config.json; default: the usual places)")
	r.quiet = fs.Bool("q", false, "no progress")
	r.conc = fs.Int("concurrency", 4, "blobs transferred at once")
	return r
}

func (r *registryFlags) client() (*client.Client, error) {
	files := client.DefaultAuthFiles()
	if *r.authFile != "" {
		files = []string{*r.authFile}
	}
	return client.New(client.Config{
		Insecure: r.insecure, Credentials: client.CredentialsFromFiles(files...),
		Concurrency: *r.conc, UserAgent: "berth",
	})
}

// remoteRef strips an optional docker:// from a registry reference.
func remoteRef(s string) string { return strings.TrimPrefix(s, "docker://") }

func imagePullFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	plat := platformFlag(fs)
	all := fs.Bool("all-platforms", false, "pull every platform of a multi-platform image")
	rf := declareRegistryFlags(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usagef("image pull: expected HOST/NAME[:TAG|@DIGEST], got %d arguments", len(args))
		}
		p, err := parsePlatform(*plat)
		if err != nil {
			return err
		}
		c, err := rf.client()
		if err != nil {
			return err
		}
		ref, err := c.ParseReference(remoteRef(args[0]))
		if err != nil {
			return err
		}
		store, err := openStore(ctx, *root)
		if err != nil {
			return err
		}
		defer store.Close()
		bar := newProgress(os.Stderr, *rf.quiet)
		res, err := c.Pull(ctx, ref, store, client.PullOptions{
			Platform:     &ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
			AllPlatforms: *all, Progress: bar.report,
		})
		bar.finish()
		if err != nil {
			return err
		}
		name := ref.String()
		target := res.Root
		if image.IsIndex(target.MediaType) && !*all && len(res.Manifests) == 1 {
			// One platform of a multi-platform image: the name points at what is here, so that
			// the image can be pushed, exported and collected as a whole.
			target = res.Manifests[0]
		}
		if err := store.PutImage(ctx, content.Image{Name: name, Target: target}); err != nil {
			return err
		}
		if target.Digest != res.Root.Digest {
			fmt.Fprintf(stdoutOf(ctx), "%s %s (%s of index %s)\n", name, target.Digest, p, res.Root.Digest)
			return nil
		}
		fmt.Fprintf(stdoutOf(ctx), "%s %s\n", name, target.Digest)
		return nil
	}
}

func imagePushFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := rootFlag(fs)
	rf := declareRegistryFlags(fs)
	var mountFrom listFlag
	fs.Var(&mountFrom, "mount-from", "`REPO` on the target registry that may hold the blobs (cross-repository mount; repeatable)")
	return func(ctx context.Context, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return usagef("image push: expected IMAGE [HOST/NAME[:TAG]], got %d arguments", len(args))
		}
		dest := args[0]
		if len(args) == 2 {
			dest = args[1]
		}
		c, err := rf.client()
		if err != nil {
			return err
		}
		ref, err := c.ParseReference(remoteRef(dest))
		if err != nil {
			return err
		}
		r, err := image.ParseRef(args[0])
		if err != nil {
			return err
		}
		var store *content.Store
		if r.Transport == image.TransportStore {
			if store, err = openStore(ctx, *root); err != nil {
				return err
			}
			defer store.Close()
		}
		src, err := image.Open(ctx, r, store)
		if err != nil {
			return err
		}
		defer src.Close()
		bar := newProgress(os.Stderr, *rf.quiet)
		d, err := c.Push(ctx, src, src.Target, ref, client.PushOptions{MountFrom: mountFrom, Progress: bar.report})
		bar.finish()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdoutOf(ctx), "%s %s\n", ref, d.Digest)
		return nil
	}
}

// progress draws one line per blob on a terminal (redrawn at most ten times a second), or prints a
// line per finished blob otherwise.
type progress struct {
	w     io.Writer
	quiet bool
	tty   bool
	blobs map[string]*blobState
	order []string
	drawn int
	last  time.Time
}

type blobState struct {
	size, done int64
	state      client.State
}

func newProgress(w *os.File, quiet bool) *progress {
	return &progress{w: w, quiet: quiet, tty: term.IsTerminal(int(w.Fd())), blobs: map[string]*blobState{}}
}

func (p *progress) report(r client.Progress) {
	if p.quiet {
		return
	}
	key := r.Descriptor.Digest.Encoded()
	if len(key) > 12 {
		key = key[:12]
	}
	b, ok := p.blobs[key]
	if !ok {
		b = &blobState{size: r.Descriptor.Size}
		p.blobs[key] = b
		p.order = append(p.order, key)
	}
	b.done, b.state = r.Done, r.State
	if !p.tty {
		switch r.State {
		case client.StateDone, client.StateExists, client.StateMounted:
			fmt.Fprintf(p.w, "%s %-8s %s\n", key, r.State, humanSize(r.Descriptor.Size))
		}
		return
	}
	if time.Since(p.last) < 100*time.Millisecond && r.State == client.StateTransferring {
		return
	}
	p.draw()
}

func (p *progress) draw() {
	p.last = time.Now()
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, k := range p.order {
		b := p.blobs[k]
		const width = 30
		fill := width
		if b.state == client.StateTransferring || b.state == client.StateStarted {
			fill = min(width, int(float64(width)*float64(b.done)/float64(max(b.size, 1))))
		}
		fmt.Fprintf(p.w, "\x1b[2K%s [%s%s] %9s / %-9s %s\n", k, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
			humanSize(b.done), humanSize(b.size), b.state)
	}
	p.drawn = len(p.order)
}

func (p *progress) finish() {
	if p.tty && !p.quiet && len(p.order) > 0 {
		p.draw()
	}
}
