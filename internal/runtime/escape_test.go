package runtime_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestExeCannotBeOverwritten: a container that gets hold of /proc/<pid>/exe of the runtime's process
// (CVE-2019-5736) cannot write the runtime's binary once that process has moved on. The host's root,
// which can do anything a container could, tries here: it holds the init's exe while the init still
// runs the runtime, lets it exec the container's program, then opens the held file for writing.
func TestExeCannotBeOverwritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A copy of its own, which no other test's process is running (that would make it busy).
	bin := filepath.Join(t.TempDir(), "berth-runtime")
	if out, err := exec.Command("cp", runtimeBin, bin).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	before, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	e.bin = bin
	id := randomID("exe")
	e.create(id, e.bundle([]string{"/checker", "sleep", "30s"}, nil))
	pid := e.state(id).Pid
	held, err := unix.Open(fmt.Sprintf("/proc/%d/exe", pid), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(held)
	e.must("start", id)
	e.waitStatus(id, "running")
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", held), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		t.Fatal("the runtime's binary could be opened for writing through a container process's exe")
	}
	if err != unix.EROFS {
		t.Fatalf("want EROFS, got %v", err)
	}
	after, _ := os.ReadFile(bin)
	if !bytes.Equal(before, after) {
		t.Fatal("the runtime's binary changed")
	}
}

// TestNoHostDescriptorOrCwd: the container's program sees only its stdio (CVE-2024-21626), and a cwd
// that points through a descriptor the runtime held is refused.
func TestNoHostDescriptorOrCwd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.runOut([]string{"/checker", "fds"}, nil)
	if r.code != 0 {
		t.Fatal(r)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] == "0" || f[0] == "1" || f[0] == "2" || f[1] == "/proc/"+"self/fd" || strings.HasPrefix(f[1], "/proc/") {
			continue
		}
		t.Errorf("descriptor leaked into the container: %s", l)
	}
	for fd := 3; fd < 12; fd++ {
		r := e.runOut([]string{"/checker", "cwd"}, func(s *specs.Spec) { s.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd) })
		if r.code == 0 {
			t.Errorf("cwd /proc/self/fd/%d was accepted: %v", fd, r)
		}
	}
	// The same through exec.
	id := randomID("cwd")
	e.create(id, e.bundle([]string{"/checker", "sleep", "30s"}, nil))
	e.must("start", id)
	for fd := 3; fd < 12; fd++ {
		if r := e.rt("exec", "--cwd", fmt.Sprintf("/proc/self/fd/%d", fd), id, "/checker", "cwd"); r.code == 0 {
			t.Errorf("exec with cwd /proc/self/fd/%d was accepted: %v", fd, r)
		}
	}
	if r := e.rt("exec", id, "/checker", "fds"); strings.Count(strings.TrimSpace(r.stdout), "\n") > 3 {
		t.Errorf("exec'd process has more than stdio: %v", r)
	}
}

// TestMaskedAndReadonlyPathsStay: with the default capabilities, a container cannot unmask a
// masked path or make a read-only one writable.
func TestMaskedAndReadonlyPathsStay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	masked := ""
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"} {
		if _, err := os.Stat(p); err == nil {
			masked = p
			break
		}
	}
	if masked == "" {
		t.Skip("none of the default masked files exists in this kernel's /proc")
	}
	script := []string{"sh", "-c", strings.Join([]string{
		"/checker read " + masked, "/checker umount " + masked, "/checker mount-over " + masked,
		"/checker write /proc/sys/kernel/hostname", "/checker remount-rw /proc/sys", "/checker umount /proc/sys",
		"/checker read /sys/firmware/../firmware", "/checker umount /sys/firmware",
	}, "; ")}
	r := e.runOut(script, nil)
	for _, want := range []string{
		"read " + masked + ` ok ""`, "umount " + masked + " EPERM", "mount-over " + masked + " EPERM",
		"write /proc/sys/kernel/hostname EROFS", "remount-rw /proc/sys EPERM", "umount /proc/sys EPERM",
		"umount /sys/firmware EPERM",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("want %q in %v", want, r)
		}
	}
}

// TestMountsCannotBeRedirected: symlinks planted in the image cannot send a mount, a device node or
// the cwd outside the rootfs.
func TestMountsCannotBeRedirected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	outside := t.TempDir()
	root := t.TempDir()
	if out, err := exec.Command("cp", "-a", rootfs+"/.", root).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v %s", err, out)
	}
	for link, target := range map[string]string{
		"abs": outside, "rel": "../../../../../../../../" + outside, "evil": outside,
	} {
		p := filepath.Join(root, link)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	r := e.runOut([]string{"/checker", "exit", "0"}, func(s *specs.Spec) {
		s.Root.Path = root
		s.Root.Readonly = false
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/abs/m1", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/rel/m2", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/evil/m3", Type: "bind", Source: t.TempDir(), Options: []string{"rbind"}},
		)
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/abs/null2", Type: "c", Major: 1, Minor: 3}}
	})
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	entries, _ := os.ReadDir(outside)
	for _, en := range entries {
		t.Errorf("something was created outside the rootfs, in %s: %s", outside, en.Name())
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), outside) {
		t.Errorf("a mount landed on the host at %s", outside)
	}
}
