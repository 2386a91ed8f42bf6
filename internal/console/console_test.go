package console

import (
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPtyOverSocket(t *testing.T) {
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	master, slave, err := OpenPty("/dev/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	if err := SetSize(slave, 24, 80); err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	if err := SendFile(a, master); err != nil {
		t.Fatal(err)
	}
	master.Close()
	got, err := RecvFile(b)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != "/dev/ptmx" {
		t.Errorf("name %q", got.Name())
	}
	ws, err := unix.IoctlGetWinsize(int(got.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row != 24 || ws.Col != 80 {
		t.Fatalf("received master reports %+v, %v", ws, err)
	}
	if _, err := slave.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadAtLeast(got, buf, 3); err != nil || string(buf[:2]) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
}
