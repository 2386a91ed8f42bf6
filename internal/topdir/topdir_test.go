package topdir

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMark(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, ferr := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	unix.Close(fd)
	if ferr != nil {
		t.Skipf("%s has no inode flags (%v): nothing to mark", dir, ferr)
	}
	Mark(dir)
	if !Marked(dir) {
		// Setting it needs to own the directory (or CAP_FOWNER); a temporary directory is ours.
		t.Fatalf("%s is not marked after Mark", dir)
	}
	Mark(dir) // idempotent
	Mark(dir + "/missing")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
