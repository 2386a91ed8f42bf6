package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// probeOverlay mounts a one-layer overlay in dir and unmounts it.
func probeOverlay(dir string) error {
	base, err := os.MkdirTemp(dir, "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			return err
		}
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(base, "lower"), "upperdir=" + filepath.Join(base, "upper"), "workdir=" + filepath.Join(base, "work"),
	}}
	target := filepath.Join(base, "merged")
	if err := MountAll([]Mount{m}, target); err != nil {
		return err
	}
	return unix.Unmount(target, unix.MNT_DETACH)
}

// MountAll mounts the snapshot's mounts on target.
func MountAll(mounts []Mount, target string) error {
	for _, m := range mounts {
		switch m.Type {
		case "overlay":
			if err := mountOverlay(m.Options, target); err != nil {
				return err
			}
		case "bind":
			flags := uintptr(unix.MS_BIND)
			for _, o := range m.Options {
				if o == "rbind" {
					flags |= unix.MS_REC
				}
			}
			if err := unix.Mount(m.Source, target, "", flags, ""); err != nil {
				return fmt.Errorf("bind %s on %s: %w", m.Source, target, err)
			}
		default:
			return fmt.Errorf("mount type %q: not one the snapshotter makes", m.Type)
		}
	}
	return nil
}

// Unmount detaches what MountAll mounted on target; it is not an error if nothing is mounted.
func Unmount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// mountOverlay uses the mount API's fsconfig, one call per lower directory ("lowerdir+", Linux
// 6.8), which has no limit on their number; mount(2)'s single page of options fits only a few
// dozen layer paths. Older kernels get mount(2).
func mountOverlay(opts []string, target string) error {
	err := fsconfigOverlay(opts, target)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	data := strings.Join(opts, ",")
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("overlay on %s: %d bytes of options, more than mount(2) takes, and this kernel has no lowerdir+: %w", target, len(data), unix.E2BIG)
	}
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

func fsconfigOverlay(opts []string, target string) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fsfd)
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		if k == "lowerdir" {
			for _, l := range strings.Split(v, ":") {
				if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
					return fmt.Errorf("overlay lowerdir+ %s: %w", l, err)
				}
			}
			continue
		}
		if v == "" && !strings.Contains(o, "=") {
			err = unix.FsconfigSetFlag(fsfd, k)
		} else {
			err = unix.FsconfigSetString(fsfd, k, v)
		}
		if err != nil {
			return fmt.Errorf("overlay option %s: %w", o, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create overlay: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move overlay to %s: %w", target, err)
	}
	return nil
}

// syncTree flushes a freshly unpacked layer before it is renamed into place: one syncfs for the
// filesystem instead of an fsync per file.
func syncTree(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// lowerDir finds the directory name as the stack of layer directories (top first) shows it through
// overlayfs: the topmost layer that has the name decides, a whiteout or a non-directory hides it,
// and an opaque directory or a whiteout on the way hides what the layers below have under it.
// Names are resolved without following symlinks.
func lowerDir(layers []string, name string) (unix.Stat_t, bool) {
	parts := strings.Split(name, "/")
	for _, l := range layers {
		root, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return unix.Stat_t{}, false
		}
		st, found, stop := lookInLayer(root, parts)
		unix.Close(root)
		if found {
			return st, true
		}
		if stop {
			return unix.Stat_t{}, false
		}
	}
	return unix.Stat_t{}, false
}

// lookInLayer reports the directory parts in one layer (found), or whether this layer hides it
// from the layers below (stop).
func lookInLayer(root int, parts []string) (st unix.Stat_t, found, stop bool) {
	dir, err := unix.Dup(root)
	if err != nil {
		return st, false, true
	}
	defer func() { unix.Close(dir) }()
	for i, p := range parts {
		if err := unix.Fstatat(dir, p, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return st, false, false // not in this layer: look below
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return st, false, true // a whiteout, a file or a symlink hides what is below
		}
		next, err := unix.Openat(dir, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return st, false, true
		}
		unix.Close(dir)
		dir = next
		if i == len(parts)-1 {
			return st, true, false
		}
		if isOpaqueFD(dir) {
			return st, false, true
		}
	}
	return st, false, false
}

func isOpaqueFD(fd int) bool {
	buf := make([]byte, 2)
	n, err := unix.Getxattr(fmt.Sprintf("/proc/self/fd/%d", fd), overlayOpaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// lockDir takes an exclusive flock on a directory; wait says whether to block for it.
func lockDir(dir string, wait bool) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(fd, how); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
