package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const overlayOpaqueXattr = "trusted.overlay.opaque"

// copyLayer applies one layer directory, in overlay form, onto dst: a 0/0 character device removes
// the name below, an opaque directory drops what lower layers put in it, everything else is copied
// with its owner, mode, times and extended attributes (hard links within the layer stay links).
func copyLayer(ctx context.Context, src, dst string) error {
	links := map[uint64]string{}
	var walk func(rel string) error
	walk = func(rel string) error {
		ents, err := os.ReadDir(filepath.Join(src, rel))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			r := filepath.Join(rel, e.Name())
			s, d := filepath.Join(src, r), filepath.Join(dst, r)
			var st unix.Stat_t
			if err := unix.Lstat(s, &st); err != nil {
				return err
			}
			mode := st.Mode & unix.S_IFMT
			if mode == unix.S_IFCHR && st.Rdev == 0 {
				if err := os.RemoveAll(d); err != nil {
					return err
				}
				continue
			}
			if mode == unix.S_IFDIR {
				var ex unix.Stat_t
				exists := unix.Lstat(d, &ex) == nil
				if exists && ex.Mode&unix.S_IFMT != unix.S_IFDIR {
					if err := os.Remove(d); err != nil {
						return err
					}
					exists = false
				}
				if exists && isOpaque(s) {
					if err := os.RemoveAll(d); err != nil {
						return err
					}
					exists = false
				}
				if !exists {
					if err := os.Mkdir(d, 0o700); err != nil {
						return err
					}
				}
				if err := walk(r); err != nil {
					return err
				}
				if err := copyMeta(s, d, &st, true); err != nil {
					return err
				}
				continue
			}
			if err := os.RemoveAll(d); err != nil {
				return err
			}
			if st.Nlink > 1 && mode == unix.S_IFREG {
				if first, ok := links[st.Ino]; ok {
					if err := os.Link(first, d); err != nil {
						return err
					}
					continue
				}
				links[st.Ino] = d
			}
			switch mode {
			case unix.S_IFREG:
				if err := copyFile(s, d); err != nil {
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
			case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
				if err := unix.Mknod(d, st.Mode, int(st.Rdev)); err != nil {
					return err
				}
			default:
				continue // sockets
			}
			if err := copyMeta(s, d, &st, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		return fmt.Errorf("copy layer %s: %w", src, err)
	}
	return nil
}

func isOpaque(dir string) bool {
	buf := make([]byte, 2)
	n, err := unix.Lgetxattr(dir, overlayOpaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	// io.Copy between files uses copy_file_range: reflinks or in-kernel copies where possible.
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func copyMeta(src, dst string, st *unix.Stat_t, dir bool) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	if err := copyXattrs(src, dst, dir); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string, dir bool) error {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(src, buf)
	if err != nil || n == 0 {
		return nil
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue // overlay's markers, already acted on
		}
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(src, name, v)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, v[:vn], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}
