package sealedexe

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// minFD is where the sealed descriptor is moved so that setting up a child's descriptors 0..N cannot
// overwrite it before execve reads it.
const minFD = 100

// Exe is an executable descriptor of the running binary that cannot be opened for writing.
type Exe struct {
	f *os.File
}

// Open seals the running executable.
func Open() (*Exe, error) {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("sealedexe: readlink /proc/self/exe: %w", err)
	}
	fd, err := detachedReadOnly(self)
	if err != nil {
		var merr error
		fd, merr = memfdCopy(self)
		if merr != nil {
			return nil, fmt.Errorf("sealedexe: read-only mount of %s: %w; memfd copy: %w", self, err, merr)
		}
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, minFD)
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("sealedexe: dup: %w", err)
	}
	return &Exe{f: os.NewFile(uintptr(high), self)}, nil
}

// Path is what to pass to execve: it resolves to the sealed file while the descriptor is open. The
// descriptor is close-on-exec, which does not matter to execve of a binary (only to scripts).
func (e *Exe) Path() string { return fmt.Sprintf("/proc/self/fd/%d", e.f.Fd()) }

// Close releases the descriptor, and with it the detached mount once no process runs from it.
func (e *Exe) Close() error { return e.f.Close() }

// detachedReadOnly clones the mount of the binary's directory without attaching it anywhere, makes the
// clone read-only and opens the binary inside it. The directory, not the file, is cloned so that the
// descriptor a container could get from /proc/<pid>/exe is not the root of the mount, which is what
// mount_setattr(2) would need to make it writable again.
func detachedReadOnly(path string) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, filepath.Dir(path), unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", filepath.Dir(path), err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return -1, fmt.Errorf("mount_setattr: %w", err)
	}
	fd, err := unix.Openat(tree, filepath.Base(path), unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s in the read-only clone: %w", path, err)
	}
	return fd, nil
}

// memfdCopy copies the binary into a memfd and seals it against every kind of change.
func memfdCopy(path string) (int, error) {
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	src, err := os.Open(path)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	defer src.Close()
	dst := os.NewFile(uintptr(fd), "memfd")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return -1, fmt.Errorf("copy into memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(dst.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return -1, fmt.Errorf("seal memfd: %w", err)
	}
	nfd, err := unix.Dup(int(dst.Fd()))
	dst.Close()
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(nfd)
	return nfd, nil
}
