package image

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/topdir"
)

// stageRootfs makes an empty directory in dir to unpack a root filesystem into before it is renamed
// to its final name, and returns it with the staging directory to remove afterwards.
//
// The root is made under a random name in a staging directory marked as a top directory (see
// package topdir): a bundle deleted and unpacked again in the same place otherwise cost 1.8 s of
// kernel time for the 1,663 files of the 256 MiB test image, against 0.3 s.
func stageRootfs(dir string) (root, staging string, err error) {
	var b [8]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	staging = filepath.Join(dir, ".rootfs-staging-"+suffix)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return "", "", err
	}
	topdir.Mark(staging)
	root = filepath.Join(staging, "r"+suffix)
	if err := os.Mkdir(root, 0o755); err != nil {
		os.Remove(staging)
		return "", "", err
	}
	return root, staging, nil
}
