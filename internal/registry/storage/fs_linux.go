package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// renameNoReplace moves oldpath to newpath unless newpath exists (then os.ErrExist).
// Filesystems without RENAME_NOREPLACE get link+unlink, which has the same outcome.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return os.ErrExist
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		if err := os.Link(oldpath, newpath); err != nil {
			return err
		}
		return os.Remove(oldpath)
	}
	return &os.LinkError{Op: "renameat2", Old: oldpath, New: newpath, Err: err}
}

// fsyncDir makes the entries of dir (a rename or create into it) durable.
func fsyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

// touch sets the modification time of path to the kernel's current file time, the clock garbage
// collection compares against (see gc.go). It fails with os.ErrNotExist when path is missing, which
// makes it an existence check too.
func touch(path string) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return os.ErrNotExist
		}
		return &os.PathError{Op: "utimensat", Path: path, Err: err}
	}
	return nil
}

// flock takes (how = unix.LOCK_SH or LOCK_EX, optionally |LOCK_NB) a lock on f, retrying EINTR.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

func isWouldBlock(err error) bool { return errors.Is(err, unix.EWOULDBLOCK) }

// sameFile reports whether the open file f is still the one linked at path: an upload that was
// committed (renamed into blobs/) or removed must not be written to through an old descriptor.
func sameFile(f *os.File, path string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return false, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if err := unix.Stat(path, &b); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Nlink > 0, nil
}

// startWriteback asks the kernel to begin writing a range back now, so that the fsync at commit
// has little left to do (24 GiB of RAM means the default dirty thresholds never start it).
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// mkdirAllSync creates dir and any missing parents below root, fsyncing the parent of each
// directory it creates, so that a path handed out after a crash still exists.
func mkdirAllSync(root, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || filepath.IsAbs(rel) || (len(rel) >= 3 && rel[:3] == "../") {
		return fmt.Errorf("mkdir %s: outside %s", dir, root)
	}
	parent := filepath.Dir(dir)
	if parent != root && parent != dir {
		if err := mkdirAllSync(root, parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	return fsyncDir(parent)
}
