package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/mount"
	"github.com/berth-dev/berth/internal/pathrs"
)

// The container half builds the root filesystem in its own mount namespace, before pivot_root, from
// the host's view: every destination is resolved inside the rootfs with pathrs and mounted onto
// /proc/self/fd/N, so a symlink planted in the image cannot redirect a mount outside the rootfs.

var propagationFlags = map[string]uintptr{
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

type rootfsBuilder struct {
	spec    *specs.Spec
	cfg     *initConfig
	root    *os.File // O_PATH descriptor of the bind-mounted rootfs
	devHost bool     // /dev is a bind mount of the host's: create no device nodes in it
	warn    func(string)
}

func mountErr(op, src, dst, fstype string, flags uintptr, data string, err error) error {
	return fmt.Errorf("%s %q on %q (type %q, flags %#x, data %q): %w", op, src, dst, fstype, flags, data, err)
}

func doMount(src, dst, fstype string, flags uintptr, data string) error {
	for {
		err := unix.Mount(src, dst, fstype, flags, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return mountErr("mount", src, dst, fstype, flags, data, err)
		}
		return nil
	}
}

// prepare does everything up to pivot_root: propagation, the rootfs bind, the spec's mounts and the
// device nodes. Without a mount namespace of its own (hostNS), the container shares the runtime's:
// the host's propagation is left alone, and the mounts made here are the host's to see (delete
// removes them).
func (b *rootfsBuilder) prepare(hostNS bool) error {
	l := b.spec.Linux
	shared := strings.HasSuffix(l.RootfsPropagation, "shared")
	if !hostNS {
		// Until pivot_root, nothing done here may reach the host: slave, except when the spec wants
		// mounts shared with the host (rshared volumes), which then keeps the peer groups. The spec's
		// own propagation is applied to the new root afterwards.
		flag := uintptr(unix.MS_SLAVE | unix.MS_REC)
		if shared {
			flag = propagationFlags[l.RootfsPropagation]
		}
		if err := doMount("", "/", "", flag, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation: %w", err)
		}
	}
	// The rootfs is reached without its path: the runtime started this process in it, and unsharing
	// the mount namespace moved the cwd to the same directory in the new namespace's tree. In a new
	// user namespace the path may run through directories (such as /root) that the container's root
	// may not search. Only a joined mount namespace, which resets the cwd, needs the path.
	var rootfd int
	var err error
	if b.cfg.MountNSJoined {
		rootfd, err = unix.Open(b.cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	} else {
		rootfd, err = unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("root.path %s: %w", b.cfg.Rootfs, err)
	}
	defer unix.Close(rootfd)
	if shared {
		// pivot_root refuses a new root whose parent mount is shared.
		if err := makeParentPrivate(rootfd); err != nil {
			return err
		}
	}
	// A recursive clone of the rootfs, moved onto itself, makes it a mount point for pivot_root; the
	// clone's descriptor is then the handle on the new root.
	tree, err := unix.OpenTree(rootfd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("root.path: clone %s: %w", b.cfg.Rootfs, err)
	}
	if err := unix.MoveMount(tree, "", rootfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		unix.Close(tree)
		return fmt.Errorf("root.path: bind %s: %w", b.cfg.Rootfs, err)
	}
	b.root = os.NewFile(uintptr(tree), b.cfg.Rootfs)
	for i, m := range b.spec.Mounts {
		if err := b.mountOne(i, m); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
	}
	if !b.devHost {
		if err := b.createDevices(); err != nil {
			return err
		}
	}
	return nil
}

// makeParentPrivate makes the mount holding the directory fd private in this namespace. It walks up
// with ".." from the descriptor, so that no path needs to be searchable.
func makeParentPrivate(fd int) error {
	cur, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	defer func() { unix.Close(cur) }()
	var st unix.Statx_t
	if err := unix.Statx(cur, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &st); err != nil {
		return fmt.Errorf("statx rootfs: %w", err)
	}
	id := st.Mnt_id
	for {
		parent, err := unix.Openat(cur, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open ..: %w", err)
		}
		if err := unix.Statx(parent, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID|unix.STATX_INO, &st); err != nil {
			unix.Close(parent)
			return fmt.Errorf("statx ..: %w", err)
		}
		var self unix.Statx_t
		_ = unix.Statx(cur, "", unix.AT_EMPTY_PATH, unix.STATX_INO, &self)
		if st.Mnt_id != id || (st.Ino == self.Ino && st.Dev_major == self.Dev_major && st.Dev_minor == self.Dev_minor) {
			// cur is the root of its mount (or of the whole tree).
			unix.Close(parent)
			break
		}
		unix.Close(cur)
		cur = parent
	}
	if err := doMount("", fmt.Sprintf("/proc/self/fd/%d", cur), "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the mount holding the rootfs private: %w", err)
	}
	return nil
}

func (b *rootfsBuilder) mountOne(i int, m specs.Mount) error {
	opts, err := mount.Parse(m.Options)
	if err != nil {
		return err
	}
	if opts.Bind() || m.Type == "bind" {
		return b.bindMount(i, m, opts)
	}
	switch m.Type {
	case "cgroup", "cgroup2":
		return b.mountCgroup(m, opts)
	}
	dst, err := pathrs.MkdirAll(b.root, m.Destination, 0o755)
	if err != nil {
		return err
	}
	defer dst.Close()
	data := opts.DataString(b.labelOption(m.Type)...)
	if m.Type == "tmpfs" && opts.TmpCopyUp {
		return b.tmpCopyUp(m, opts, dst, data)
	}
	err = doMount(m.Source, pathrs.ProcPath(dst), m.Type, opts.Flags&^unix.MS_REMOUNT, data)
	if err != nil && errors.Is(err, unix.EPERM) && (m.Type == "sysfs" || m.Type == "mqueue") {
		// Without a network (or ipc) namespace of its own, a user namespace may not mount sysfs (or
		// mqueue): bind the host's instead, read-only as the mount asked, as runc does.
		host := "/sys"
		if m.Type == "mqueue" {
			host = "/dev/mqueue"
		}
		b.warn(fmt.Sprintf("mount %s on %s: %v; binding the host's %s instead", m.Type, m.Destination, err, host))
		err = doMount(host, pathrs.ProcPath(dst), "", unix.MS_BIND|unix.MS_REC, "")
		if err == nil {
			return b.finishMount(m, opts, true)
		}
	}
	if err != nil {
		return err
	}
	return b.finishMount(m, opts, false)
}

// labelOption gives the SELinux context option for a filesystem mount when linux.mountLabel is set.
// Without SELinux the label cannot mean anything, so it is left out (with a warning at create time).
func (b *rootfsBuilder) labelOption(fstype string) []string {
	label := b.spec.Linux.MountLabel
	if label == "" || !b.cfg.SELinux {
		return nil
	}
	switch fstype {
	case "proc", "sysfs", "cgroup", "cgroup2", "mqueue", "devpts":
		return nil
	}
	return []string{"context=\"" + label + "\""}
}

func (b *rootfsBuilder) bindMount(i int, m specs.Mount, opts *mount.Options) error {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(b.cfg.Bundle, src)
	}
	clone, detached := b.cfg.SourceFDs[i]
	if detached {
		// A detached clone the runtime made, for a user namespace that could not reach the source
		// by path; it is moved into place rather than bound.
		src = fmt.Sprintf("/proc/self/fd/%d", clone)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	var dst *os.File
	if st.IsDir() {
		dst, err = pathrs.MkdirAll(b.root, m.Destination, 0o755)
	} else {
		dst, err = pathrs.EnsureFile(b.root, m.Destination, 0o644)
	}
	if err != nil {
		return err
	}
	defer dst.Close()
	if detached {
		if err := unix.MoveMount(clone, "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
			return fmt.Errorf("move the source's clone into place: %w", err)
		}
	} else if opts.IDMap {
		fd, ok := b.cfg.IDMapFDs[m.Destination]
		if !ok {
			return fmt.Errorf("idmap: no user namespace was prepared for %s", m.Destination)
		}
		if err := idmappedBind(opts, src, dst, fd); err != nil {
			return err
		}
	} else if err := doMount(src, pathrs.ProcPath(dst), "", unix.MS_BIND|(opts.Flags&unix.MS_REC), ""); err != nil {
		return err
	}
	if m.Destination == "/dev" {
		b.devHost = true
	}
	return b.finishMount(m, opts, true)
}

// finishMount applies what a first mount(2) cannot: read-only and the other flags on a bind mount,
// propagation, and recursive attributes. It reopens the destination so as to act on the new mount,
// not on the directory beneath it.
func (b *rootfsBuilder) finishMount(m specs.Mount, opts *mount.Options, bind bool) error {
	remount := opts.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if !bind {
		remount = 0
	}
	if remount == 0 && len(opts.Propagation) == 0 && opts.AttrSet == 0 && opts.AttrClr == 0 {
		return nil
	}
	top, err := pathrs.Open(b.root, m.Destination, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer top.Close()
	p := pathrs.ProcPath(top)
	if remount != 0 {
		if err := remountBind(p, remount); err != nil {
			return err
		}
	}
	for _, pf := range opts.Propagation {
		if err := doMount("", p, "", pf, ""); err != nil {
			return err
		}
	}
	if opts.AttrSet != 0 || opts.AttrClr != 0 {
		attr := &unix.MountAttr{Attr_set: opts.AttrSet, Attr_clr: opts.AttrClr}
		if err := unix.MountSetattr(int(top.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("mount_setattr (recursive options): %w", err)
		}
	}
	return nil
}

// remountBind changes a bind mount's flags. A mount that came from a more privileged namespace has
// locked flags (nosuid, nodev, noexec, atime) that a remount must repeat or the kernel says EPERM.
func remountBind(path string, flags uintptr) error {
	err := doMount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
	if err == nil || !errors.Is(err, unix.EPERM) {
		return err
	}
	var fs unix.Statfs_t
	if serr := unix.Statfs(path, &fs); serr != nil {
		return err
	}
	locked := uintptr(0)
	for st, ms := range map[int64]uintptr{
		unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
		unix.ST_RDONLY: unix.MS_RDONLY,
	} {
		if fs.Flags&st != 0 {
			locked |= ms
		}
	}
	if locked&^flags == 0 {
		return err
	}
	return doMount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|flags|locked, "")
}

// tmpCopyUp mounts a tmpfs that starts with what the destination directory held (runc's tmpcopyup).
func (b *rootfsBuilder) tmpCopyUp(m specs.Mount, opts *mount.Options, dst *os.File, data string) error {
	tmp, err := os.MkdirTemp("", "berth-tmpcopyup-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := doMount(m.Source, tmp, "tmpfs", opts.Flags&^unix.MS_RDONLY, data); err != nil {
		return err
	}
	defer unix.Unmount(tmp, unix.MNT_DETACH)
	if err := copyTree(pathrs.ProcPath(dst), tmp); err != nil {
		return fmt.Errorf("tmpcopyup: %w", err)
	}
	if err := doMount(tmp, pathrs.ProcPath(dst), "", unix.MS_MOVE, ""); err != nil {
		return err
	}
	if opts.Flags&unix.MS_RDONLY != 0 {
		top, err := pathrs.Open(b.root, m.Destination, unix.O_PATH|unix.O_CLOEXEC)
		if err != nil {
			return err
		}
		defer top.Close()
		return doMount("", pathrs.ProcPath(top), "", unix.MS_REMOUNT|opts.Flags, data)
	}
	return nil
}

// copyTree copies a directory's contents (files, directories, symlinks; modes and owners) for
// tmpcopyup. Device nodes and sockets are skipped: a tmpfs over /dev gets its nodes elsewhere.
func copyTree(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(s, &st); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.Mkdir(d, os.FileMode(st.Mode&0o7777)); err != nil {
				return err
			}
			if err := copyTree(s, d); err != nil {
				return err
			}
		case unix.S_IFLNK:
			t, err := os.Readlink(s)
			if err != nil {
				return err
			}
			if err := os.Symlink(t, d); err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := copyFile(s, d, os.FileMode(st.Mode&0o7777)); err != nil {
				return err
			}
		default:
			continue
		}
		if err := unix.Lchown(d, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// mountCgroup gives the container a view of its own cgroups at m.Destination. With a cgroup namespace
// the real filesystems are mounted (the kernel roots them at the container's cgroup); without one, the
// container's cgroup directories are bind-mounted, so it never sees its ancestors'.
func (b *rootfsBuilder) mountCgroup(m specs.Mount, opts *mount.Options) error {
	// The container's cgroups must exist with the process in them before they are shown.
	if err := b.cfg.waitJoined(); err != nil {
		return err
	}
	dst, err := pathrs.MkdirAll(b.root, m.Destination, 0o755)
	if err != nil {
		return err
	}
	defer dst.Close()
	flags := opts.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if dir, ok := b.cfg.Cgroups[""]; ok && len(b.cfg.Cgroups) == 1 {
		// Pure cgroup v2: one hierarchy.
		if b.cfg.CgroupNS {
			return doMount("cgroup2", pathrs.ProcPath(dst), "cgroup2", flags, "")
		}
		if err := doMount(dir, pathrs.ProcPath(dst), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		return b.finishMount(m, &mount.Options{Flags: unix.MS_BIND | flags}, true)
	}
	// v1 (maybe hybrid): a tmpfs holding one directory per hierarchy.
	if err := doMount("tmpfs", pathrs.ProcPath(dst), "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return err
	}
	top, err := pathrs.Open(b.root, m.Destination, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer top.Close()
	for key, hostDir := range b.cfg.Cgroups {
		name := strings.TrimPrefix(key, "name=")
		sub, err := mkdirFresh(top, name)
		if err != nil {
			return err
		}
		target := pathrs.ProcPath(sub)
		switch {
		case b.cfg.CgroupNS && key == "unified":
			err = doMount("cgroup2", target, "cgroup2", flags, "")
		case b.cfg.CgroupNS:
			err = doMount("cgroup", target, "cgroup", flags, key)
		default:
			if !bindDetached(hostDir, top, name, flags) {
				err = doMount(hostDir, target, "", unix.MS_BIND|unix.MS_REC, "")
				if err == nil && flags != 0 {
					var again *os.File
					if again, err = pathrs.Open(top, name, unix.O_PATH|unix.O_CLOEXEC); err == nil {
						err = remountBind(pathrs.ProcPath(again), flags)
						again.Close()
					}
				}
			}
		}
		sub.Close()
		if err != nil {
			return fmt.Errorf("cgroup hierarchy %s: %w", key, err)
		}
		// Co-mounted controllers ("cpu,cpuacct") are also reachable by each controller's name.
		if parts := strings.Split(name, ","); len(parts) > 1 {
			for _, p := range parts {
				if err := unix.Symlinkat(name, int(top.Fd()), p); err != nil && !errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("symlink %s: %w", p, err)
				}
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := doMount("", pathrs.ProcPath(top), "", unix.MS_REMOUNT|flags, "mode=755"); err != nil {
			return err
		}
	}
	return nil
}

// bindDetached attaches a recursive clone of src at name below dir (a directory the runtime has
// just made in a fresh tmpfs) with the mount flags given: the flags are set on the clone while it
// is detached, so that no remount (and no second lookup of the target) is needed. Eleven such
// mounts make a container's /sys/fs/cgroup on a hybrid host. It reports false, having attached
// nothing, where the kernel refuses any step (an atime mode locked by a more privileged
// namespace, for one): the caller then binds and remounts, which knows how to keep locked flags.
func bindDetached(src string, dir *os.File, name string, flags uintptr) bool {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return false
	}
	defer unix.Close(tree)
	if set, clr := mountAttrs(flags); set != 0 || clr != 0 {
		attr := &unix.MountAttr{Attr_set: set, Attr_clr: clr}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return false
		}
	}
	return unix.MoveMount(tree, "", int(dir.Fd()), name, unix.MOVE_MOUNT_F_EMPTY_PATH) == nil
}

// mountAttrs translates the per-mount MS_* flags to mount_setattr's attributes.
func mountAttrs(flags uintptr) (set, clr uint64) {
	for ms, attr := range map[uintptr]uint64{
		unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
		unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
		unix.MS_NODIRATIME: unix.MOUNT_ATTR_NODIRATIME,
	} {
		if flags&ms != 0 {
			set |= attr
		}
	}
	// The atime mode is one field: setting one means clearing the others.
	switch {
	case flags&unix.MS_NOATIME != 0:
		set, clr = set|unix.MOUNT_ATTR_NOATIME, clr|unix.MOUNT_ATTR__ATIME
	case flags&unix.MS_STRICTATIME != 0:
		set, clr = set|unix.MOUNT_ATTR_STRICTATIME, clr|unix.MOUNT_ATTR__ATIME
	case flags&unix.MS_RELATIME != 0:
		set, clr = set|unix.MOUNT_ATTR_RELATIME, clr|unix.MOUNT_ATTR__ATIME
	}
	return set, clr
}

// mkdirFresh makes and opens the directory name in dir, the root of a tmpfs the runtime has just
// mounted: nothing but the runtime has put anything there, so no symlink can have been planted,
// and the resolution in the root that pathrs does (several syscalls per missing directory) is
// not needed. name must be a single path component.
func mkdirFresh(dir *os.File, name string) (*os.File, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, fmt.Errorf("%q is not a directory name", name)
	}
	if err := unix.Mkdirat(int(dir.Fd()), name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "mkdir", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
}

var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// createDevices makes the default device nodes and linux.devices, and /dev's standard symlinks.
func (b *rootfsBuilder) createDevices() error {
	devs := make([]specs.LinuxDevice, 0, len(defaultDevices)+len(b.spec.Linux.Devices))
	listed := map[string]bool{}
	for _, d := range b.spec.Linux.Devices {
		listed[filepath.Clean(d.Path)] = true
	}
	for _, d := range defaultDevices {
		if !listed[d.Path] {
			devs = append(devs, d)
		}
	}
	devs = append(devs, b.spec.Linux.Devices...)
	for i, d := range devs {
		if err := b.createDevice(d); err != nil {
			if i >= len(devs)-len(b.spec.Linux.Devices) {
				return fmt.Errorf("linux.devices[%d] (%s): %w", i-(len(devs)-len(b.spec.Linux.Devices)), d.Path, err)
			}
			return fmt.Errorf("default device %s: %w", d.Path, err)
		}
	}
	dev, err := pathrs.MkdirAll(b.root, "/dev", 0o755)
	if err != nil {
		return err
	}
	defer dev.Close()
	links := [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if l[1] == "ptmx" {
			// Replace a node the image may carry: the container's ptmx must be its own devpts's.
			_ = unix.Unlinkat(int(dev.Fd()), "ptmx", 0)
		}
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

func (b *rootfsBuilder) createDevice(d specs.LinuxDevice) error {
	parent, err := pathrs.MkdirAll(b.root, filepath.Dir(d.Path), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	name := filepath.Base(d.Path)
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	}
	if err := unix.Unlinkat(int(parent.Fd()), name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove what the image has at %s: %w", d.Path, err)
	}
	err = unix.Mknodat(int(parent.Fd()), name, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if errors.Is(err, unix.EPERM) && typ != unix.S_IFIFO {
		// In a user namespace mknod is not allowed: bind the host's node instead.
		return b.bindDevice(d, parent, name)
	}
	if err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	// mknod applies the umask; the spec's mode is meant exactly.
	if err := unix.Fchmodat(int(parent.Fd()), name, mode, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid != -1 || gid != -1 {
		if err := unix.Fchownat(int(parent.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	return nil
}

func (b *rootfsBuilder) bindDevice(d specs.LinuxDevice, parent *os.File, name string) error {
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("create bind target: %w", err)
	}
	unix.Close(fd)
	target, err := pathrs.Open(parent, name, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer target.Close()
	return doMount(d.Path, pathrs.ProcPath(target), "", unix.MS_BIND, "")
}

// pivot makes the rootfs (the descriptor root) the process's root and drops the host's tree from
// this mount namespace. Without a mount namespace of its own it can only chroot.
func pivot(root *os.File, noPivot, hostNS bool) error {
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return fmt.Errorf("chdir to the rootfs: %w", err)
	}
	if hostNS {
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	if noPivot {
		if err := doMount(".", "/", "", unix.MS_MOVE, ""); err != nil {
			return err
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(oldroot)
	// pivot_root(".", ".") stacks the old root under the new one, which spares a temporary directory
	// in the image; the old root is then unmounted from under us.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to the old root: %w", err)
	}
	// Detaching must not propagate to the host.
	if err := doMount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the old root: %w", err)
	}
	return unix.Chdir("/")
}

// finalize applies what must be done from inside the new root: propagation of /, masked and
// read-only paths, and a read-only root.
func finalizeRootfs(spec *specs.Spec, hostNS bool) error {
	l := spec.Linux
	if p := l.RootfsPropagation; p != "" && !hostNS {
		if err := doMount("", "/", "", propagationFlags[p], ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation: %w", err)
		}
	}
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	for i, p := range l.MaskedPaths {
		if err := maskPath(root, p); err != nil {
			return fmt.Errorf("linux.maskedPaths[%d] %s: %w", i, p, err)
		}
	}
	for i, p := range l.ReadonlyPaths {
		if err := readonlyPath(root, p); err != nil {
			return fmt.Errorf("linux.readonlyPaths[%d] %s: %w", i, p, err)
		}
	}
	if spec.Root.Readonly {
		if err := remountBind("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	return nil
}

// openIfExists resolves path in root; a missing path is (nil, nil): masked and read-only paths
// that the image does not have are nothing to do.
func openIfExists(root *os.File, path string) (*os.File, error) {
	f, err := pathrs.Open(root, path, unix.O_PATH|unix.O_CLOEXEC)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	return f, err
}

func maskPath(root *os.File, path string) error {
	f, err := openIfExists(root, path)
	if f == nil || err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return doMount("tmpfs", pathrs.ProcPath(f), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=0500")
	}
	return doMount("/dev/null", pathrs.ProcPath(f), "", unix.MS_BIND, "")
}

func readonlyPath(root *os.File, path string) error {
	f, err := openIfExists(root, path)
	if f == nil || err != nil {
		return err
	}
	defer f.Close()
	if err := doMount(pathrs.ProcPath(f), pathrs.ProcPath(f), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	top, err := pathrs.Open(root, path, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer top.Close()
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(int(top.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		// Kernels without mount_setattr: read-only on the top mount at least.
		if errors.Is(err, unix.ENOSYS) {
			return remountBind(pathrs.ProcPath(top), unix.MS_RDONLY)
		}
		return fmt.Errorf("mount_setattr read-only: %w", err)
	}
	return nil
}
