package pathrs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// Open resolves path inside root and opens it with flags (O_PATH is a good default). The result is
// named "root/path" for error messages.
func Open(root *os.File, path string, flags int) (*os.File, error) {
	rel := clean(path)
	fd, err := openat2(int(root.Fd()), rel, flags)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: filepath.Join(root.Name(), rel), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root.Name(), rel)), nil
}

// MkdirAll makes sure path exists as a directory inside root, creating what is missing with mode, and
// returns an O_PATH descriptor of it.
func MkdirAll(root *os.File, path string, mode os.FileMode) (*os.File, error) {
	return ensure(root, path, mode, false)
}

// EnsureFile makes sure path exists inside root, creating its parents as directories and, if path
// itself is missing, an empty regular file; it returns an O_PATH descriptor of it. An existing path of
// any type is accepted, as bind mounts of files onto devices or sockets are legitimate.
func EnsureFile(root *os.File, path string, mode os.FileMode) (*os.File, error) {
	return ensure(root, path, mode, true)
}

// maxLinks bounds the symlinks followed while creating, as the kernel bounds them while resolving.
const maxLinks = 40

func ensure(root *os.File, path string, mode os.FileMode, file bool) (*os.File, error) {
	return ensureDepth(root, path, mode, file, 0)
}

func ensureDepth(root *os.File, path string, mode os.FileMode, file bool, depth int) (*os.File, error) {
	if depth > maxLinks {
		return nil, &os.PathError{Op: "create", Path: filepath.Join(root.Name(), path), Err: unix.ELOOP}
	}
	rel := clean(path)
	if f, err := Open(root, rel, unix.O_PATH|unix.O_CLOEXEC); err == nil {
		if !file {
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil {
				f.Close()
				return nil, err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				f.Close()
				return nil, &os.PathError{Op: "mkdir", Path: f.Name(), Err: unix.ENOTDIR}
			}
		}
		return f, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return nil, err
	}
	parts := strings.Split(rel, "/")
	parent, err := unix.Dup(int(root.Fd()))
	if err != nil {
		return nil, err
	}
	for i, part := range parts {
		if part == "" || part == "." {
			continue
		}
		prefix := strings.Join(parts[:i+1], "/")
		last := i == len(parts)-1
		fd, err := openat2(int(root.Fd()), prefix, unix.O_PATH|unix.O_CLOEXEC)
		if errors.Is(err, unix.ENOENT) {
			if target, ok := danglingLink(parent, part); ok {
				// A symlink to something missing: create its target (inside the root, however the
				// link is written), as mkdir -p would through a symlink.
				dest := target
				if !filepath.IsAbs(target) {
					dest = filepath.Join("/", strings.Join(parts[:i], "/"), target)
				}
				dmode := mode
				if !last {
					dmode = 0o755
				}
				f, lerr := ensureDepth(root, dest, dmode, last && file, depth+1)
				if lerr != nil {
					unix.Close(parent)
					return nil, lerr
				}
				f.Close()
				err = nil // opened below, once
			} else if last && file {
				var cfd int
				cfd, err = unix.Openat(parent, part, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, uint32(mode.Perm()))
				if err == nil {
					unix.Close(cfd)
				}
			} else {
				dirMode := uint32(0o755)
				if last {
					dirMode = uint32(mode.Perm())
				}
				err = unix.Mkdirat(parent, part, dirMode)
			}
			if err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(parent)
				return nil, &os.PathError{Op: "create", Path: filepath.Join(root.Name(), prefix), Err: err}
			}
			if err == nil || errors.Is(err, unix.EEXIST) {
				fd, err = openat2(int(root.Fd()), prefix, unix.O_PATH|unix.O_CLOEXEC)
			}
		}
		unix.Close(parent)
		if err != nil {
			return nil, &os.PathError{Op: "openat2", Path: filepath.Join(root.Name(), prefix), Err: err}
		}
		parent = fd
	}
	return os.NewFile(uintptr(parent), filepath.Join(root.Name(), rel)), nil
}

// danglingLink reports whether name in dir is a symlink, and its target.
func danglingLink(dir int, name string) (string, bool) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", false
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil || n == 0 {
		return "", false
	}
	return string(buf[:n]), true
}

// ProcPath names the file an O_PATH descriptor refers to, for syscalls that take a path (mount(2)).
func ProcPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

func clean(path string) string {
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	if rel == "" {
		return "."
	}
	return rel
}

func openat2(dirfd int, path string, flags int) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, path, &unix.OpenHow{Flags: uint64(flags) | unix.O_CLOEXEC, Resolve: resolve})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}
