package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/console"
	"github.com/berth-dev/berth/internal/testimage"
)

// Real clients drive berth-runtime: containerd (Debian's, through its runc shim with BinaryName
// pointing at berth-runtime) and podman (--runtime). The images are built here from the busybox root.

const imageRef = "localhost/berth-test:latest"

var imageCfg = testimage.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}

// shortTemp makes a temporary directory with a short path: unix socket paths are limited to 108 bytes.
func shortTemp(t *testing.T, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountUnder(d)
		os.RemoveAll(d)
	})
	return d
}

// removeEmptyCgroups removes the cgroup directories named name (and below) in every hierarchy that
// are empty: the parents a client's containers were placed under (containerd's namespace,
// podman's libpod_parent) outlive the containers. Busy ones (a real podman on the host) stay.
func removeEmptyCgroups(name string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	if _, err := os.Stat("/sys/fs/cgroup/" + name); err == nil {
		roots = append(roots, "/sys/fs/cgroup/"+name)
	}
	for _, r := range roots {
		var dirs []string
		_ = filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = unix.Rmdir(dirs[i])
		}
	}
}

// unmountUnder lazily unmounts everything mounted below dir (what a client's storage left).
func unmountUnder(dir string) {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var mps []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		_ = unix.Unmount(mps[i], unix.MNT_DETACH)
	}
}

type cmdResult struct {
	out  string
	code int
}

func runCmd(t *testing.T, timeout time.Duration, name string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	f := tempFile(t)
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errorsAs(err, &ee) {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		code = ee.ExitCode()
	}
	return cmdResult{readAll(t, f), code}
}

func errorsAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	if ok {
		*target = ee
	}
	return ok
}

// runInPTY runs a command with a terminal as its stdio and returns what it printed.
func runInPTY(t *testing.T, timeout time.Duration, name string, args ...string) cmdResult {
	t.Helper()
	master, slave, err := console.OpenPty("/dev/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = io.Copy(&out, master) }()
	err = cmd.Wait()
	master.Close()
	wg.Wait()
	code := 0
	var ee *exec.ExitError
	if err != nil && errorsAs(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return cmdResult{out.String(), code}
}

// anyCode accepts any exit status.
const anyCode = -1

func want(t *testing.T, what string, r cmdResult, code int, substrings ...string) {
	t.Helper()
	if code != anyCode && r.code != code {
		t.Errorf("%s: exit %d, want %d: %s", what, r.code, code, r.out)
		return
	}
	for _, s := range substrings {
		if !strings.Contains(r.out, s) {
			t.Errorf("%s: want %q in %q", what, s, r.out)
		}
	}
}

func TestContainerd(t *testing.T) {
	needRoot(t)
	for _, bin := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install containerd): %v", bin, err)
		}
	}
	dir := shortTemp(t, "berth-ctd-")
	t.Cleanup(func() { removeEmptyCgroups("berth-test") })
	sock := filepath.Join(dir, "c.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	d := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	d.Stdout, d.Stderr = logf, logf
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.Process.Kill()
			<-done
		}
		logf.Close()
	})
	ctr := func(args ...string) cmdResult {
		t.Helper()
		return runCmd(t, 60*time.Second, "ctr", append([]string{"--address", sock, "--namespace", "berth-test"}, args...)...)
	}
	deadline := time.Now().Add(20 * time.Second)
	for ctr("version").code != 0 {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd did not come up: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	archive := filepath.Join(dir, "image.tar")
	if err := testimage.OCIArchive(rootfs, archive, imageRef, imageCfg); err != nil {
		t.Fatal(err)
	}
	want(t, "import", ctr("images", "import", archive), 0, "unpacking")

	// The shim's runtime state goes under the test's directory, not /run/containerd/runc.
	runcRoot := filepath.Join(dir, "runc")
	run := func(id string, flags []string, cmd ...string) cmdResult {
		args := append(append([]string{"run", "--rm", "--runc-binary", runtimeBin, "--runc-root", runcRoot}, flags...), imageRef, id)
		return ctr(append(args, cmd...)...)
	}
	want(t, "run true", run("c-true", nil, "/bin/true"), 0)
	want(t, "exit code", run("c-exit", nil, "sh", "-c", "exit 7"), 7)
	want(t, "env", run("c-env", []string{"--env", "FOO=bar"}, "sh", "-c", "echo $FOO; /checker id"), 0, "bar", "uid=0 gid=0")
	want(t, "read-only rootfs", run("c-ro", []string{"--read-only"}, "sh", "-c", "touch /x"), 1, "Read-only file system")
	want(t, "bind mount", run("c-bind", []string{"--mount", "type=bind,src=" + dir + ",dst=/data,options=rbind:ro"}, "sh", "-c", "ls /data; touch /data/y"), 1, "config.toml", "Read-only file system")
	tty := runInPTY(t, 60*time.Second, "ctr", "--address", sock, "--namespace", "berth-test", "run", "--rm", "--runc-binary", runtimeBin, "--runc-root", runcRoot, "-t", imageRef, "c-tty", "tty")
	want(t, "tty (console socket)", tty, 0, "/dev/pts/")

	// A detached task: exec, ps, pause, resume, kill.
	want(t, "run detached", ctr("run", "-d", "--runc-binary", runtimeBin, "--runc-root", runcRoot, "--memory-limit", "33554432", imageRef, "c-long", "/checker", "sigwait"), 0)
	t.Cleanup(func() {
		ctr("task", "kill", "--signal", "SIGKILL", "c-long")
		ctr("task", "delete", "--force", "c-long")
		ctr("container", "delete", "c-long")
	})
	time.Sleep(200 * time.Millisecond)
	// containerd's default spec does not mount cgroupfs: read the limit from the host (v1, or v2).
	limit := "/sys/fs/cgroup/memory/berth-test/c-long/memory.limit_in_bytes"
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		limit = "/sys/fs/cgroup/berth-test/c-long/memory.max"
	}
	if b, err := os.ReadFile(limit); err != nil || strings.TrimSpace(string(b)) != "33554432" {
		t.Errorf("memory limit: %q %v", b, err)
	}
	want(t, "task exec", ctr("task", "exec", "--exec-id", "e1", "c-long", "sh", "-c", "echo exec-ok; exit 5"), 5, "exec-ok")
	want(t, "task exec tty", runInPTY(t, 60*time.Second, "ctr", "--address", sock, "--namespace", "berth-test", "task", "exec", "-t", "--exec-id", "e2", "c-long", "tty"), 0, "/dev/pts/")
	want(t, "task ps", ctr("task", "ps", "c-long"), 0, "PID")
	want(t, "task pause", ctr("task", "pause", "c-long"), 0)
	want(t, "paused", ctr("task", "ls"), 0, "PAUSED")
	want(t, "task resume", ctr("task", "resume", "c-long"), 0)
	want(t, "running", ctr("task", "ls"), 0, "RUNNING")
	want(t, "task kill TERM", ctr("task", "kill", "--signal", "SIGTERM", "c-long"), 0)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(ctr("task", "ls").out, "STOPPED") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	want(t, "stopped by SIGTERM", ctr("task", "ls"), 0, "STOPPED")
	want(t, "task delete", ctr("task", "delete", "c-long"), 0)
}

func TestPodman(t *testing.T) {
	needRoot(t)
	for _, bin := range []string{"podman", "conmon"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install podman): %v", bin, err)
		}
	}
	dir := shortTemp(t, "berth-pod-")
	t.Cleanup(func() { removeEmptyCgroups("libpod_parent") })
	base := []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--tmpdir", filepath.Join(dir, "tmp"), "--runtime", runtimeBin}
	podman := func(args ...string) cmdResult {
		t.Helper()
		return runCmd(t, 90*time.Second, "podman", append(append([]string{}, base...), args...)...)
	}
	t.Cleanup(func() {
		podman("rm", "--all", "--force", "--time", "0")
		podman("rmi", "--all", "--force")
	})
	archive := filepath.Join(dir, "image.tar")
	if err := testimage.DockerArchive(rootfs, archive, imageRef, imageCfg); err != nil {
		t.Fatal(err)
	}
	want(t, "load", podman("load", "-i", archive), 0, imageRef)
	// Podman's default rlimits raise the hard limit of files and processes, which needs
	// CAP_SYS_RESOURCE: on hosts whose root lacks it (as these), give them explicitly.
	common := []string{"--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}
	run := func(args ...string) cmdResult {
		return podman(append(append([]string{"run", "--rm"}, common...), args...)...)
	}
	want(t, "run true", run(imageRef, "/bin/true"), 0)
	want(t, "exit code", run(imageRef, "sh", "-c", "exit 42"), 42)
	want(t, "env", run("--env", "FOO=bar-baz", imageRef, "sh", "-c", "echo $FOO"), 0, "bar-baz")
	want(t, "user", run("--user", "1000:1000", imageRef, "/checker", "id"), 0, "uid=1000 gid=1000")
	want(t, "read-only root", run("--read-only", imageRef, "sh", "-c", "touch /x"), 1, "Read-only file system")
	want(t, "read-only tmpfs /tmp", run("--read-only", imageRef, "sh", "-c", "touch /tmp/x && echo tmp-ok"), 0, "tmp-ok")
	host := filepath.Join(dir, "vol")
	_ = os.MkdirAll(host, 0o755)
	_ = os.WriteFile(filepath.Join(host, "f"), []byte("from-host"), 0o644)
	want(t, "bind mount rw", run("-v", host+":/data", imageRef, "sh", "-c", "cat /data/f; echo written > /data/g"), 0, "from-host")
	if b, _ := os.ReadFile(filepath.Join(host, "g")); strings.TrimSpace(string(b)) != "written" {
		t.Errorf("bind mount rw: the container's write did not reach the host: %q", b)
	}
	want(t, "bind mount ro", run("-v", host+":/data:ro", imageRef, "sh", "-c", "echo x > /data/f"), 1, "Read-only file system")
	want(t, "network none", run(imageRef, "ls", "/sys/class/net"), 0, "lo")
	want(t, "tty", runInPTY(t, 90*time.Second, "podman", append(append(append([]string{}, base...), "run", "--rm", "-t"), append(common, imageRef, "tty")...)...), 0, "/dev/pts/")

	want(t, "run detached", podman(append(append([]string{"run", "-d", "--name", "p-long", "--memory", "32m", "--pids-limit", "12"}, common...), imageRef, "/checker", "sigwait")...), 0)
	want(t, "exec", podman("exec", "p-long", "sh", "-c", "echo exec-ok"), 0, "exec-ok")
	want(t, "exec exit code", podman("exec", "p-long", "sh", "-c", "exit 3"), 3)
	want(t, "exec env and user", podman("exec", "--env", "Y=y", "--user", "1000", "p-long", "sh", "-c", "echo $Y $(id -u)"), 0, "y 1000")
	want(t, "exec tty", runInPTY(t, 90*time.Second, "podman", append(append([]string{}, base...), "exec", "-t", "p-long", "tty")...), 0, "/dev/pts/")
	want(t, "memory limit", podman("exec", "p-long", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"), 0, "33554432")
	want(t, "pids limit", podman("exec", "p-long", "cat", "/sys/fs/cgroup/pids/pids.max"), 0, "12")
	want(t, "pids limit enforced", podman("exec", "p-long", "sh", "-c", "for i in $(seq 20); do sleep 5 & done; wait"), anyCode, "can't fork")
	want(t, "stop (SIGTERM handled)", podman("stop", "-t", "10", "p-long"), 0)
	want(t, "exit status after SIGTERM", podman("inspect", "--format", "{{.State.ExitCode}}", "p-long"), 0, "0")
	want(t, "run detached, ignoring TERM", podman(append(append([]string{"run", "-d", "--name", "p-stubborn"}, common...), imageRef, "sleep", "1000")...), 0)
	t0 := time.Now()
	want(t, "stop escalates to SIGKILL", podman("stop", "-t", "1", "p-stubborn"), 0)
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("stop took %v", d)
	}
	want(t, "exit status after SIGKILL", podman("inspect", "--format", "{{.State.ExitCode}}", "p-stubborn"), 0, "137")
}
