package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/topdir"
)

// Driver says how root filesystems are assembled.
type Driver string

const (
	DriverOverlay Driver = "overlay"
	DriverCopy    Driver = "copy"
)

// Config says where the snapshotter keeps its directories and how it assembles them.
type Config struct {
	Root string
	// Driver: overlay or copy; empty chooses overlay when the kernel mounts it here, else copy.
	Driver Driver
	Logger *slog.Logger
}

// Snapshotter is safe for concurrent use, also across processes sharing Root.
type Snapshotter struct {
	root   string
	driver Driver
	log    *slog.Logger
}

// Mount is one mount that assembles a snapshot, in the runtime-spec's terms.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// layerMeta is stored beside each layer's directory.
type layerMeta struct {
	ChainID digest.Digest `json:"chainID"`
	Parent  digest.Digest `json:"parent,omitempty"`
	DiffID  digest.Digest `json:"diffID"`
	Blob    digest.Digest `json:"blob"`
}

// New opens (creating) the snapshotter at cfg.Root and removes what an interrupted unpack left.
func New(ctx context.Context, cfg Config) (*Snapshotter, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("snapshotter: no root directory: %w", errdefs.ErrInvalidArgument)
	}
	if os.Geteuid() != 0 {
		// Overlay markers (trusted.* xattrs, 0/0 devices) and layer ownership need root.
		return nil, fmt.Errorf("snapshotter: needs root: %w", errdefs.ErrFailedPrecondition)
	}
	s := &Snapshotter{root: cfg.Root, driver: cfg.Driver, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, d := range []string{"layers", "active", "tmp"} {
		if err := os.MkdirAll(filepath.Join(s.root, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshotter: %w", err)
		}
	}
	// Layers are unpacked into randomly named directories under tmp: spread, each lands in a
	// block group of its own rather than where a pruned layer was just freed (package topdir).
	topdir.Mark(filepath.Join(s.root, "tmp"))
	// Leftovers of unpacks that did not finish: an unpack in progress holds a lock on its
	// directory, so only abandoned ones can be locked here.
	if ents, err := os.ReadDir(filepath.Join(s.root, "tmp")); err == nil {
		for _, e := range ents {
			p := filepath.Join(s.root, "tmp", e.Name())
			// A directory made a moment ago may not be locked by its maker yet.
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < time.Minute {
				continue
			}
			if fd, err := lockDir(p, false); err == nil {
				os.RemoveAll(p)
				unix.Close(fd)
			}
		}
	}
	switch s.driver {
	case DriverOverlay, DriverCopy:
	case "":
		s.driver = DriverCopy
		if err := probeOverlay(filepath.Join(s.root, "tmp")); err == nil {
			s.driver = DriverOverlay
		} else {
			s.log.Info("overlayfs unavailable: root filesystems will be copied", "reason", err)
		}
	default:
		return nil, fmt.Errorf("snapshotter: driver %q: expected overlay or copy: %w", s.driver, errdefs.ErrInvalidArgument)
	}
	return s, nil
}

// Driver is the driver in use.
func (s *Snapshotter) Driver() Driver { return s.driver }

// ChainIDs computes the image-spec chain IDs of a stack of diff IDs.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

func (s *Snapshotter) layerDir(chain digest.Digest) string {
	return filepath.Join(s.root, "layers", chain.Algorithm().String()+"-"+chain.Encoded())
}

// Has reports whether the layer with this chain ID is unpacked.
func (s *Snapshotter) Has(chain digest.Digest) bool {
	_, err := os.Stat(filepath.Join(s.layerDir(chain), "meta.json"))
	return err == nil
}

// Unpack makes sure every layer of the stack is unpacked and returns the chain ID of the top one.
// Layers already there are not read.
func (s *Snapshotter) Unpack(ctx context.Context, p image.Provider, layers []image.Layer) (digest.Digest, error) {
	diffIDs := make([]digest.Digest, len(layers))
	for i, l := range layers {
		if l.DiffID == "" {
			return "", fmt.Errorf("layer %d (%s): no diff_id: %w", i, l.Desc.Digest, errdefs.ErrInvalidArgument)
		}
		diffIDs[i] = l.DiffID
	}
	chains := ChainIDs(diffIDs)
	for i, l := range layers {
		if s.Has(chains[i]) {
			continue
		}
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		if err := s.unpackOne(ctx, p, l, chains[i], parent); err != nil {
			return "", fmt.Errorf("layer %d (%s): %w", i, l.Desc.Digest, err)
		}
	}
	if len(chains) == 0 {
		return "", fmt.Errorf("an image with no layers: %w", errdefs.ErrInvalidArgument)
	}
	return chains[len(chains)-1], nil
}

func (s *Snapshotter) unpackOne(ctx context.Context, p image.Provider, l image.Layer, chain, parent digest.Digest) error {
	tmp, err := s.tempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lock, err := lockDir(tmp, true)
	if err != nil {
		return err
	}
	defer unix.Close(lock)
	fsDir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return err
	}
	var lowers []string
	if parent != "" {
		if lowers, err = s.stack(parent); err != nil {
			return err
		}
	}
	o := image.UnpackOptions{Overlay: true, Logger: s.log, LowerDir: func(name string) (unix.Stat_t, bool) { return lowerDir(lowers, name) }}
	if err := image.Unpack(ctx, p, []image.Layer{l}, fsDir, o); err != nil {
		return err
	}
	mb, _ := json.Marshal(layerMeta{ChainID: chain, Parent: parent, DiffID: l.DiffID, Blob: l.Desc.Digest})
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), mb, 0o600); err != nil {
		return err
	}
	if err := syncTree(tmp); err != nil {
		return err
	}
	err = os.Rename(tmp, s.layerDir(chain))
	if err != nil && s.Has(chain) {
		return nil // another process unpacked it meanwhile
	}
	return err
}

func (s *Snapshotter) tempDir() (string, error) {
	var b [8]byte
	rand.Read(b[:])
	p := filepath.Join(s.root, "tmp", hex.EncodeToString(b[:]))
	return p, os.Mkdir(p, 0o700)
}

// stack returns the layer directories of chain, top first, as overlayfs wants its lowerdirs.
func (s *Snapshotter) stack(chain digest.Digest) ([]string, error) {
	var dirs []string
	for c := chain; c != ""; {
		b, err := os.ReadFile(filepath.Join(s.layerDir(c), "meta.json"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("layer %s is not unpacked: %w", c, errdefs.ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		var m layerMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("layer %s: meta.json: %w", c, err)
		}
		dirs = append(dirs, filepath.Join(s.layerDir(c), "fs"))
		c = m.Parent
		if len(dirs) > 500 {
			return nil, fmt.Errorf("layer %s: more than 500 parents: %w", chain, errdefs.ErrInvalidArgument)
		}
	}
	return dirs, nil
}

func validKey(key string) error {
	if key == "" || strings.ContainsAny(key, "/\x00") || key == "." || key == ".." || len(key) > 200 {
		return fmt.Errorf("snapshot key %q: expected a non-empty name without '/': %w", key, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (s *Snapshotter) activeDir(key string) string { return filepath.Join(s.root, "active", key) }

// Prepare creates the writable snapshot key on top of the layer chain and returns the mounts that
// assemble it. errdefs.ErrAlreadyExists if key exists.
func (s *Snapshotter) Prepare(ctx context.Context, key string, chain digest.Digest) ([]Mount, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	lowers, err := s.stack(chain)
	if err != nil {
		return nil, err
	}
	dir := s.activeDir(key)
	if err := os.Mkdir(dir, 0o700); errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
	} else if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "parent"), []byte(chain), 0o600); err != nil {
		return nil, err
	}
	var mounts []Mount
	switch s.driver {
	case DriverOverlay:
		for _, d := range []string{"upper", "work"} {
			if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
				return nil, err
			}
		}
		mounts = s.overlayMounts(dir, lowers)
	case DriverCopy:
		rootfs := filepath.Join(dir, "rootfs")
		if err := os.Mkdir(rootfs, 0o755); err != nil {
			return nil, err
		}
		for i := len(lowers) - 1; i >= 0; i-- {
			if err := copyLayer(ctx, lowers[i], rootfs); err != nil {
				return nil, fmt.Errorf("snapshot %q: %w", key, err)
			}
		}
		mounts = []Mount{{Type: "bind", Source: rootfs, Options: []string{"rbind", "rw"}}}
	}
	ok = true
	return mounts, nil
}

func (s *Snapshotter) overlayMounts(dir string, lowers []string) []Mount {
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + filepath.Join(dir, "upper"),
		"workdir=" + filepath.Join(dir, "work"),
		"index=off",
	}}}
}

// Mounts returns the mounts of an existing snapshot.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	dir := s.activeDir(key)
	b, err := os.ReadFile(filepath.Join(dir, "parent"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if s.driver == DriverCopy {
		return []Mount{{Type: "bind", Source: filepath.Join(dir, "rootfs"), Options: []string{"rbind", "rw"}}}, nil
	}
	lowers, err := s.stack(digest.Digest(b))
	if err != nil {
		return nil, err
	}
	return s.overlayMounts(dir, lowers), nil
}

// Remove deletes the snapshot key (unmount it first); it is not an error if it does not exist.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	if err := os.RemoveAll(s.activeDir(key)); err != nil {
		return fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	return nil
}

// Prune removes the unpacked layers that are neither in keep (chain IDs, with their parents) nor
// under an active snapshot, and returns their chain IDs.
func (s *Snapshotter) Prune(ctx context.Context, keep []digest.Digest) ([]digest.Digest, error) {
	used := map[string]bool{}
	mark := func(c digest.Digest) {
		if dirs, err := s.stack(c); err == nil {
			for _, d := range dirs {
				used[filepath.Dir(d)] = true
			}
		}
	}
	for _, c := range keep {
		mark(c)
	}
	actives, _ := os.ReadDir(filepath.Join(s.root, "active"))
	for _, a := range actives {
		if b, err := os.ReadFile(filepath.Join(s.root, "active", a.Name(), "parent")); err == nil {
			mark(digest.Digest(b))
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, err
	}
	var removed []digest.Digest
	for _, e := range ents {
		p := filepath.Join(s.root, "layers", e.Name())
		if used[p] {
			continue
		}
		alg, enc, _ := strings.Cut(e.Name(), "-")
		// Renamed away first, so that a crash mid-removal never leaves a half layer under its name.
		tmp, err := s.tempDir()
		if err != nil {
			return removed, err
		}
		os.Remove(tmp)
		if err := os.Rename(p, tmp); err != nil {
			return removed, err
		}
		if err := os.RemoveAll(tmp); err != nil {
			return removed, err
		}
		removed = append(removed, digest.NewDigestFromEncoded(digest.Algorithm(alg), enc))
	}
	return removed, nil
}
