package image

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fsTopdirFL is FS_TOPDIR_FL (chattr +T): "the top of a directory hierarchy" for ext4's Orlov
// allocator, which places such a directory's subdirectories by spreading them over the block
// groups (from a start chosen by hashing the new name) instead of beside their parent.
const fsTopdirFL = 0x00020000

// stageRootfs makes an empty directory in dir to unpack a root filesystem into before it is renamed
// to its final name, and returns it with the staging directory to remove afterwards.
//
// Why: a bundle is typically deleted and unpacked again in the same place. ext4 puts new inodes in
// their parent directory's block group, which is where the old tree's were just freed, and on a
// filesystem without a journal (such as these machines' root) it will not reuse an inode freed in
// the last minute or more: every allocation then scans past each of them, quadratic in the number
// of files (1.8 s of kernel time for the 1,663 files of the 256 MiB test image, against 0.3 s).
// The root is therefore made in a staging directory marked as a top directory, under a random
// name, so that it lands in a block group chosen afresh each time. Where the filesystem has no such
// flag, the ioctl fails and nothing changes but two names.
func stageRootfs(dir string) (root, staging string, err error) {
	var b [8]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	staging = filepath.Join(dir, ".rootfs-staging-"+suffix)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return "", "", err
	}
	markTopDir(staging)
	root = filepath.Join(staging, "r"+suffix)
	if err := os.Mkdir(root, 0o755); err != nil {
		os.Remove(staging)
		return "", "", err
	}
	return root, staging, nil
}

// markTopDir sets FS_TOPDIR_FL on dir where the filesystem supports it (an allocation hint only).
func markTopDir(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopdirFL != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|fsTopdirFL)
}
