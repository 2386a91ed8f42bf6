package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/pathrs"
)

// Options say how a layer is applied.
type Options struct {
	// Overlay writes whiteouts as overlayfs reads them in a layer directory (a 0/0 character device
	// for a deleted name, the trusted.overlay.opaque xattr for an opaque directory) instead of
	// deleting what they hide. The target must then hold this layer alone.
	Overlay bool
	// NoChown leaves every entry owned by the caller, for callers that cannot change ownership
	// (rootless). Device nodes are then skipped, with a log line, since they cannot be made either.
	NoChown bool
	// Logger receives what was skipped; nil means slog.Default().
	Logger *slog.Logger
	// LowerDir, with Overlay, describes the directories of the layers below: a directory that an
	// entry needs but this layer does not list is created with the lower one's owner, mode and
	// times (as overlayfs shows a directory copied up), not as root's 0755. It returns false when
	// no lower layer has the directory.
	LowerDir func(name string) (unix.Stat_t, bool)
}

// Result sums up what a layer held.
type Result struct {
	Entries int   // tar entries applied (whiteouts included)
	Bytes   int64 // bytes of regular file content written
}

// Whiteout names, from the image-spec.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	overlayOpaque  = "trusted.overlay.opaque"
)

// ErrUnsafeEntry marks an entry that was refused because of what it names, not because of I/O.
var ErrUnsafeEntry = errors.New("unsafe layer entry")

// Apply extracts the uncompressed tar stream r into dir, which must exist.
func Apply(ctx context.Context, dir string, r io.Reader, o Options) (Result, error) {
	root, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Result{}, fmt.Errorf("open layer target: %w", err)
	}
	defer root.Close()
	a := &applier{
		ctx: ctx, root: root, rootFD: int(root.Fd()), o: o,
		log: o.Logger, buf: make([]byte, 1<<20),
		seen: map[string]struct{}{}, dirs: map[string]dirTimes{},
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	defer a.dropParent()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.res, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a.res, fmt.Errorf("read layer: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.res, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
		a.res.Entries++
	}
	a.dropParent()
	if err := a.finishWhiteouts(); err != nil {
		return a.res, err
	}
	return a.res, a.setDirTimes()
}

type dirTimes struct{ atime, mtime time.Time }

type applier struct {
	ctx    context.Context
	root   *os.File
	rootFD int
	o      Options
	log    *slog.Logger
	buf    []byte
	res    Result

	// The parent directory of the last entry, kept open: entries come grouped by directory.
	parentPath string
	parentFD   int
	hasParent  bool

	// Flattening: names this layer wrote (with their ancestors), and the whiteouts to apply once the
	// whole layer is in, since a whiteout hides only lower layers whatever the order of entries.
	seen      map[string]struct{}
	whiteouts []string
	opaques   []string
	// Directory times are set last: creating children changes them.
	dirs map[string]dirTimes
}

// cleanName turns an entry name into a path relative to the target. Absolute names are taken as
// relative to it, as tar does; a name that climbs out with ".." is refused.
func cleanName(name string) (string, error) {
	c := path.Clean("/" + strings.TrimLeft(name, "/"))
	// Clean of a rooted path cannot climb above "/", so look for ".." in the original instead.
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: the name climbs out of the root with \"..\"", ErrUnsafeEntry)
	}
	if c == "/" {
		return ".", nil
	}
	return c[1:], nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("%w: NUL in name", ErrUnsafeEntry)
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	if base == opaqueMarker {
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, strings.TrimPrefix(base, whiteoutPrefix))
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the root can only be a directory", ErrUnsafeEntry)
		}
		return a.rootMetadata(hdr)
	}
	a.mark(name)
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeGNUSparse: // the reader turns the old TypeRegA into TypeReg
		return a.withParent(dir, func(pfd int) error { return a.regular(pfd, base, hdr, r) })
	case tar.TypeDir:
		return a.withParent(dir, func(pfd int) error { return a.directory(pfd, name, base, hdr) })
	case tar.TypeSymlink:
		return a.withParent(dir, func(pfd int) error { return a.symlink(pfd, base, hdr) })
	case tar.TypeLink:
		return a.withParent(dir, func(pfd int) error { return a.hardlink(pfd, base, hdr) })
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.withParent(dir, func(pfd int) error { return a.node(pfd, base, hdr) })
	}
	a.log.Warn("layer entry of an unsupported type skipped", "name", hdr.Name, "type", string(hdr.Typeflag))
	return nil
}

// mark records that this layer wrote name, and so its ancestors.
func (a *applier) mark(name string) {
	for name != "." && name != "" {
		if _, ok := a.seen[name]; ok {
			return
		}
		a.seen[name] = struct{}{}
		name = path.Dir(name)
	}
}

// withParent runs f with a descriptor of dir inside the root, created (with its missing ancestors)
// if need be.
func (a *applier) withParent(dir string, f func(pfd int) error) error {
	if !a.hasParent || a.parentPath != dir {
		a.dropParent()
		fd, err := openInRoot(a.rootFD, dir, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) && a.o.LowerDir != nil {
			fd, err = a.mkdirLikeLower(dir)
		} else if errors.Is(err, unix.ENOENT) {
			var pf *os.File
			if pf, err = pathrs.MkdirAll(a.root, dir, 0o755); err == nil {
				fd, err = unix.Dup(int(pf.Fd()))
				pf.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("parent directory %s: %w", dir, err)
		}
		a.parentPath, a.parentFD, a.hasParent = dir, fd, true
	}
	return f(a.parentFD)
}

// mkdirLikeLower creates the missing components of dir one by one, each with the attributes of the
// same directory in the lower layers when they have it, and returns an O_PATH descriptor of dir.
func (a *applier) mkdirLikeLower(dir string) (int, error) {
	parts := strings.Split(dir, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := openInRoot(a.rootFD, prefix, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			if i == len(parts)-1 {
				return fd, nil
			}
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, err
		}
		pfd, err := a.openDir(strings.Join(parts[:i], "/"))
		if err != nil {
			return -1, err
		}
		// Not found below: what a tar's implicit parent gets, as in the flattened case.
		hdr := &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now()}
		if st, ok := a.o.LowerDir(prefix); ok {
			hdr.Mode, hdr.Uid, hdr.Gid = int64(st.Mode&0o7777), int(st.Uid), int(st.Gid)
			hdr.AccessTime, hdr.ModTime = time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix())
		}
		err = unix.Mkdirat(pfd, parts[i], 0o700)
		if err == nil {
			err = a.metaAt(pfd, parts[i], hdr)
			a.dirs[prefix] = dirTimes{hdr.AccessTime, hdr.ModTime}
		}
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("mkdir %s: %w", prefix, err)
		}
	}
	return openInRoot(a.rootFD, dir, unix.O_PATH|unix.O_DIRECTORY)
}

func (a *applier) dropParent() {
	if a.hasParent {
		unix.Close(a.parentFD)
		a.hasParent = false
	}
}

// invalidate forgets the cached parent if name is it or one of its ancestors: replacing that entry
// changes what the path resolves to.
func (a *applier) invalidate(name string) {
	if a.hasParent && (a.parentPath == name || strings.HasPrefix(a.parentPath, name+"/")) {
		a.dropParent()
	}
}

// rootMetadata applies a "./" entry to the target itself.
func (a *applier) rootMetadata(hdr *tar.Header) error {
	fd, err := unix.Openat(a.rootFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the root: %w", err)
	}
	defer unix.Close(fd)
	if err := a.metaFD(fd, hdr, false); err != nil {
		return err
	}
	a.dirs["."] = dirTimes{hdr.AccessTime, hdr.ModTime}
	return nil
}

// openDir opens dir inside the root as an O_PATH descriptor ("" and "." are the root).
func (a *applier) openDir(dir string) (int, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || dir == "." {
		return unix.Dup(a.rootFD)
	}
	return openInRoot(a.rootFD, dir, unix.O_PATH|unix.O_DIRECTORY)
}

func openInRoot(rootFD int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat2(rootFD, name, &unix.OpenHow{
			Flags:   uint64(flags) | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// clear makes room for a new entry named base in pfd: whatever is there goes, except a directory
// when a directory is coming (tar updates it in place).
func (a *applier) clear(pfd int, name, base string, keepDir bool) (existingDir bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat: %w", err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if isDir && keepDir {
		return true, nil
	}
	a.invalidate(name)
	if isDir {
		// pfd may be the cached parent, which invalidate leaves alone (name is its child).
		return false, removeAllAt(pfd, base)
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, fmt.Errorf("remove the previous entry: %w", err)
	}
	return false, nil
}

func (a *applier) regular(pfd int, base string, hdr *tar.Header, r io.Reader) error {
	if _, err := a.clear(pfd, path.Join(a.parentPath, base), base, false); err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	var n int64
	if isSparse(hdr) {
		n, err = a.copySparse(fd, r)
	} else {
		n, err = copyToFD(fd, r, a.buf)
	}
	a.res.Bytes += n
	if err == nil {
		err = a.metaFD(fd, hdr, true)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	return err
}

// isSparse reports a GNU sparse entry (old style, or PAX records of format 0.x/1.0): a few bytes of
// archive can describe a file of any logical size, which the tar reader expands with zeros.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// copySparse writes a sparse entry, leaving holes where the reader gives zeros so that a crafted
// entry cannot fill the disk, and checks the context as it goes so that one of absurd logical size
// can be stopped.
func (a *applier) copySparse(fd int, r io.Reader) (int64, error) {
	zero := make([]byte, len(a.buf))
	var total int64
	for {
		if err := a.ctx.Err(); err != nil {
			return total, err
		}
		n, rerr := r.Read(a.buf)
		if n > 0 {
			if bytes.Equal(a.buf[:n], zero[:n]) {
				if _, err := unix.Seek(fd, int64(n), io.SeekCurrent); err != nil {
					return total, fmt.Errorf("seek: %w", err)
				}
				total += int64(n)
			} else {
				w, err := writeFD(fd, a.buf[:n])
				total += w
				if err != nil {
					return total, err
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			// Trailing holes: the size comes from the length, not from a write.
			if err := unix.Ftruncate(fd, total); err != nil {
				return total, fmt.Errorf("truncate: %w", err)
			}
			return total, nil
		}
		if rerr != nil {
			return total, fmt.Errorf("read layer: %w", rerr)
		}
	}
}

// copyToFD writes r to fd without package os, which would register the descriptor with the poller.
func copyToFD(fd int, r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, rerr := r.Read(buf)
		w, err := writeFD(fd, buf[:n])
		total += w
		if err != nil {
			return total, err
		}
		if errors.Is(rerr, io.EOF) {
			return total, nil
		}
		if rerr != nil {
			return total, fmt.Errorf("read layer: %w", rerr)
		}
	}
}

func writeFD(fd int, b []byte) (int64, error) {
	var total int64
	for len(b) > 0 {
		w, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, fmt.Errorf("write: %w", err)
		}
		b = b[w:]
		total += int64(w)
	}
	return total, nil
}

func (a *applier) directory(pfd int, name, base string, hdr *tar.Header) error {
	existing, err := a.clear(pfd, name, base, true)
	if err != nil {
		return err
	}
	if !existing {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	if err := a.metaFD(fd, hdr, false); err != nil {
		return err
	}
	a.dirs[name] = dirTimes{hdr.AccessTime, hdr.ModTime}
	return nil
}

func (a *applier) symlink(pfd int, base string, hdr *tar.Header) error {
	if _, err := a.clear(pfd, path.Join(a.parentPath, base), base, false); err != nil {
		return err
	}
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	return a.metaAt(pfd, base, hdr)
}

func (a *applier) hardlink(pfd int, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	// The target is resolved inside the root like any name, and must not be a symlink to follow:
	// a hard link to a symlink links the symlink itself.
	tdir, tbase := path.Split(target)
	tdirFD, err := a.openDir(tdir)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tdirFD)
	var st unix.Stat_t
	if err := unix.Fstatat(tdirFD, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%w: hard link to the directory %q", ErrUnsafeEntry, hdr.Linkname)
	}
	name := path.Join(a.parentPath, base)
	if name == target {
		return nil // a link to itself: nothing to do
	}
	if _, err := a.clear(pfd, name, base, false); err != nil {
		return err
	}
	if err := unix.Linkat(tdirFD, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

func (a *applier) node(pfd int, base string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	if a.o.NoChown && hdr.Typeflag != tar.TypeFifo {
		a.log.Info("device node skipped: it cannot be created without privilege", "name", hdr.Name)
		return nil
	}
	if _, err := a.clear(pfd, path.Join(a.parentPath, base), base, false); err != nil {
		return err
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknodat(pfd, base, mode, int(dev)); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return a.metaAt(pfd, base, hdr)
}

// metaFD applies ownership, mode, xattrs and, unless deferred (directories), times to the entry open
// as fd (a regular descriptor, not O_PATH).
func (a *applier) metaFD(fd int, hdr *tar.Header, times bool) error {
	if !a.o.NoChown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	// After chown, which clears the set-id bits.
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod %o: %w", hdr.Mode&0o7777, err)
	}
	if err := a.xattrs(hdr, func(name string, value []byte) error { return unix.Fsetxattr(fd, name, value, 0) }); err != nil {
		return err
	}
	if !times {
		return nil
	}
	return futimens(fd, hdr.AccessTime, hdr.ModTime)
}

// metaAt does the same for base in the directory pfd, never following it: symlinks and device nodes,
// which cannot be opened for this.
func (a *applier) metaAt(pfd int, base string, hdr *tar.Header) error {
	if !a.o.NoChown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod %o: %w", hdr.Mode&0o7777, err)
		}
	}
	p := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
	if err := a.xattrs(hdr, func(name string, value []byte) error { return unix.Lsetxattr(p, name, value, 0) }); err != nil {
		return err
	}
	return utimesAt(pfd, base, hdr.AccessTime, hdr.ModTime)
}

// xattrs sets the extended attributes PAX records carry (SCHILY.xattr.NAME).
func (a *applier) xattrs(hdr *tar.Header, set func(name string, value []byte) error) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := set(name, []byte(v)); err != nil {
			if errors.Is(err, unix.ENOTSUP) || (a.o.NoChown && errors.Is(err, unix.EPERM)) {
				a.log.Info("xattr skipped: the file system refuses it", "name", hdr.Name, "xattr", name, "error", err)
				continue
			}
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

func timespecs(atime, mtime time.Time) [2]unix.Timespec {
	if atime.IsZero() {
		atime = mtime
	}
	return [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

func futimens(fd int, atime, mtime time.Time) error {
	ts := timespecs(atime, mtime)
	// utimensat with a NULL path acts on fd itself (futimens), which x/sys does not wrap.
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return fmt.Errorf("set times: %w", e)
	}
	return nil
}

func utimesAt(pfd int, base string, atime, mtime time.Time) error {
	ts := timespecs(atime, mtime)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (a *applier) opaque(dir string) error {
	if a.o.Overlay {
		return a.withParent(dir, func(pfd int) error {
			if err := unix.Setxattr(fmt.Sprintf("/proc/self/fd/%d", pfd), overlayOpaque, []byte("y"), 0); err != nil {
				return fmt.Errorf("mark %s opaque: %w", dir, err)
			}
			return nil
		})
	}
	a.mark(dir)
	a.opaques = append(a.opaques, dir)
	return nil
}

func (a *applier) whiteout(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafeEntry, name)
	}
	target := path.Join(dir, name)
	if a.o.Overlay {
		return a.withParent(dir, func(pfd int) error {
			if _, err := a.clear(pfd, target, name, false); err != nil {
				return err
			}
			if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
				return fmt.Errorf("whiteout %s: %w", target, err)
			}
			return nil
		})
	}
	a.whiteouts = append(a.whiteouts, target)
	return nil
}

// finishWhiteouts removes what this layer's whiteouts hide of the lower layers: a whited-out name
// goes entirely unless this layer wrote it (then only the lower layers' part under it goes), and an
// opaque directory keeps only what this layer wrote in it.
func (a *applier) finishWhiteouts() error {
	for _, w := range a.whiteouts {
		if _, ours := a.seen[w]; ours {
			if err := a.prune(w); err != nil {
				return err
			}
			continue
		}
		dir, base := path.Split(w)
		fd, err := a.openDir(dir)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue // nothing below to hide
		}
		if err != nil {
			return fmt.Errorf("whiteout %s: %w", w, err)
		}
		err = removeAllAt(fd, base)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("whiteout %s: %w", w, err)
		}
	}
	for _, d := range a.opaques {
		if err := a.prune(d); err != nil {
			return err
		}
	}
	return nil
}

// prune removes, under dir, everything this layer did not write.
func (a *applier) prune(dir string) error {
	fd, err := openInRoot(a.rootFD, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil // not a directory (any more): nothing below it
	}
	if err != nil {
		return fmt.Errorf("opaque %s: %w", dir, err)
	}
	names, err := readDirNames(fd)
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("opaque %s: %w", dir, err)
	}
	var keepDirs []string
	for _, n := range names {
		p := path.Join(dir, n)
		if _, ours := a.seen[p]; !ours {
			if err := removeAllAt(fd, n); err != nil {
				unix.Close(fd)
				return fmt.Errorf("opaque %s: %w", dir, err)
			}
			continue
		}
		keepDirs = append(keepDirs, p)
	}
	unix.Close(fd)
	for _, p := range keepDirs {
		if err := a.prune(p); err != nil {
			return err
		}
	}
	return nil
}

// setDirTimes gives directories their times, deepest first so that setting a parent's comes after
// its children have stopped changing it.
func (a *applier) setDirTimes() error {
	names := make([]string, 0, len(a.dirs))
	for n := range a.dirs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return strings.Count(names[i], "/") > strings.Count(names[j], "/") })
	for _, n := range names {
		t := a.dirs[n]
		var fd int
		var err error
		if n == "." {
			fd, err = unix.Openat(a.rootFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		} else {
			fd, err = openInRoot(a.rootFD, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		}
		if err != nil {
			continue // whited out or replaced later in the layer
		}
		err = futimens(fd, t.atime, t.mtime)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("directory %s: %w", n, err)
		}
	}
	return nil
}

func readDirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// removeAllAt removes name in the directory dirfd and, if it is a directory, everything under it,
// never following a symlink.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readDirNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
