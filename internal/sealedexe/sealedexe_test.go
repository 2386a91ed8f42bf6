package sealedexe

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// writable tries what an attacker would: open the file for writing and write a byte at its end.
func writable(t *testing.T, fd int) error {
	t.Helper()
	w, err := unix.Open("/proc/self/fd/"+itoa(fd), unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(w)
	_, err = unix.Write(w, []byte{0})
	return err
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestSealedCopiesAreNotWritable checks both ways of sealing: what a process sees as its exe after
// being executed from Exe.Path cannot be opened for writing.
func TestSealedCopiesAreNotWritable(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, seal := range map[string]func(string) (int, error){"detached mount": detachedReadOnly, "memfd": memfdCopy} {
		t.Run(name, func(t *testing.T) {
			fd, err := seal(self)
			if err != nil {
				if name == "detached mount" && os.Geteuid() != 0 {
					t.Skipf("open_tree needs CAP_SYS_ADMIN: %v", err)
				}
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if err := writable(t, fd); err == nil {
				t.Fatal("the sealed executable can be opened for writing")
			}
		})
	}
}

func TestExecFromSealed(t *testing.T) {
	if os.Getenv("SEALEDEXE_CHILD") == "1" {
		return
	}
	exe, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	cmd := exec.Command(exe.Path(), "-test.run=TestExecFromSealed")
	cmd.Env = append(os.Environ(), "SEALEDEXE_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("exec from %s: %v %s", exe.Path(), err, out)
	}
}
