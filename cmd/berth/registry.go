package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/registry/storage"
)

func registryCommand() *command {
	return &command{
		name:    "registry",
		summary: "an OCI distribution-spec registry",
		subs: []*command{
			{name: "serve", summary: "serve a registry (storage created on first use)", flags: registryServeFlags},
			{name: "gc", summary: "delete unreferenced blobs and abandoned uploads (safe while serving)", flags: registryGCFlags},
		},
	}
}

// registryConfig loads --config (if any) and applies --addr and --root over it.
func registryConfig(configFile, addr, root string) (registry.Config, error) {
	var cfg registry.Config
	if configFile != "" {
		c, err := registry.LoadConfig(configFile)
		if err != nil {
			return cfg, err
		}
		cfg = c
	}
	if addr != "" {
		cfg.Addr = addr
	}
	if root != "" {
		cfg.Root = root
	}
	return cfg, nil
}

func newLogger(cfg registry.LogConfig, w io.Writer) *slog.Logger {
	lvl := slog.LevelInfo
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func registryServeFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	addr := fs.String("addr", "", "listen on `HOST:PORT` (overrides addr in the config)")
	root := fs.String("root", "", "storage `DIR` (overrides root in the config)")
	config := fs.String("config", "", "YAML configuration `FILE` (TLS, auth, read-only, deletes, gc, metrics, logs)")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("registry serve: unexpected argument %q", args[0])
		}
		cfg, err := registryConfig(*config, *addr, *root)
		if err != nil {
			return err
		}
		if cfg.Addr == "" || cfg.Root == "" {
			return usagef("registry serve: --addr and --root are required (or addr and root in --config)")
		}
		if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
			return usagef("registry serve: --addr %q: %v", cfg.Addr, err)
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		slog.SetDefault(newLogger(cfg.Log, os.Stderr))
		srv, err := registry.New(ctx, cfg)
		if err != nil {
			return err
		}
		defer srv.Close()
		return srv.Run(ctx, nil)
	}
}

func registryGCFlags(fs *flag.FlagSet) func(context.Context, []string) error {
	root := fs.String("root", "", "storage `DIR` (overrides root in the config)")
	config := fs.String("config", "", "the registry's YAML configuration `FILE` (for root and gc settings)")
	dryRun := fs.Bool("dry-run", false, "report what would be deleted, delete nothing")
	grace := fs.Duration("grace", -1, "keep unreferenced blobs younger than this (default: gc.grace of the config, or 1h)")
	ttl := fs.Duration("upload-ttl", -1, "delete uploads idle for longer than this (default: gc.uploadTTL of the config, or 24h)")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("registry gc: unexpected argument %q", args[0])
		}
		cfg, err := registryConfig(*config, "", *root)
		if err != nil {
			return err
		}
		if cfg.Root == "" {
			return usagef("registry gc: --root is required (or root in --config)")
		}
		slog.SetDefault(newLogger(cfg.Log, os.Stderr))
		g, u := cfg.GCOptions()
		if *grace >= 0 {
			g = *grace
		}
		if *ttl >= 0 {
			u = *ttl
		}
		if _, err := os.Stat(cfg.Root); err != nil {
			return fmt.Errorf("registry gc: storage root: %w", err)
		}
		st, err := storage.Open(ctx, storage.Config{Root: cfg.Root})
		if err != nil {
			return err
		}
		defer st.Close()
		rep, err := st.GC(ctx, storage.GCOptions{DryRun: *dryRun, Grace: g, UploadTTL: u})
		if err != nil {
			return err
		}
		w := os.Stdout
		fmt.Fprintf(w, "dry_run: %v\n", *dryRun)
		fmt.Fprintf(w, "grace: %s\n", g)
		fmt.Fprintf(w, "repositories: %d\n", rep.Repositories)
		fmt.Fprintf(w, "manifests: %d\n", rep.Manifests)
		fmt.Fprintf(w, "blobs_referenced: %d\n", rep.BlobsReferenced)
		fmt.Fprintf(w, "blobs_deleted: %d\n", rep.BlobsDeleted)
		fmt.Fprintf(w, "bytes_deleted: %d\n", rep.BytesDeleted)
		fmt.Fprintf(w, "blobs_kept_grace: %d\n", rep.BlobsKeptGrace)
		fmt.Fprintf(w, "links_deleted: %d\n", rep.LinksDeleted)
		fmt.Fprintf(w, "referrers_deleted: %d\n", rep.ReferrersDeleted)
		fmt.Fprintf(w, "uploads_deleted: %d\n", rep.UploadsDeleted)
		fmt.Fprintf(w, "duration_s: %.3f\n", rep.Duration.Seconds())
		_ = time.Second
		return nil
	}
}
