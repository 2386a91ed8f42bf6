package runtime_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/nsexec"
)

// subreaperEnv makes the test binary run its arguments as a child subreaper (see subreap).
const subreaperEnv = "BERTH_TEST_SUBREAPER"

// subreap runs args with this process as their child subreaper, then prints how many other
// processes it had to reap: the orphans the command left behind.
func subreap(args []string) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
		return 1
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	_ = cmd.Run()
	orphans := 0
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid > 0 {
			orphans++
			continue
		}
		if err == unix.ECHILD || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(orphans)
	return 0
}

// startedEachWay runs berth-runtime with args and preserved as descriptor 3, its container process
// started early (checked in the trace), started ahead without that (noEarly set), and started by
// the runtime half; it returns the stdout of each ("early", "ahead", "here").
func startedEachWay(t *testing.T, e *env, preserved *os.File, noEarly string, args ...string) map[string]string {
	t.Helper()
	outputs := map[string]string{}
	for mode, setting := range map[string]string{"early": "BERTH_TRACE=1", "ahead": noEarly + "=1", "here": "BERTH_NO_PRESPAWN=1"} {
		if _, err := preserved.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(e.bin, append([]string{"--root", e.root}, args...)...)
		cmd.ExtraFiles = []*os.File{preserved}
		cmd.Env = append(os.Environ(), setting)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %s: %v: %s%s", mode, args[0], err, out, stderr.String())
		}
		if mode == "early" && !strings.Contains(stderr.String(), " joined-early ") {
			t.Fatalf("%s did not start early:\n%s", args[0], stderr.String())
		}
		outputs[mode] = string(out)
	}
	return outputs
}

// TestStartedAhead: the container process that the constructor starts ahead of the runtime half
// (nsexec.c, "prespawn") and the one the runtime half starts itself (BERTH_NO_PRESPAWN=1, and
// every rootless start) get the same descriptors, directory and namespaces; and a process started
// ahead that an error leaves unused does not outlive the command.
func TestStartedAhead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	preserved, err := os.CreateTemp(t.TempDir(), "preserved-")
	if err != nil {
		t.Fatal(err)
	}
	defer preserved.Close()
	if _, err := preserved.WriteString("kept\n"); err != nil {
		t.Fatal(err)
	}
	// The network namespace is made while the container half starts (nsexec.c, late_net): sysfs,
	// mounted after, must show its devices only.
	script := "cat /proc/self/fd/3; ls /proc/self/fd | tr '\\n' ' '; echo; pwd; ls /sys/class/net; readlink /proc/self/ns/net; readlink /proc/1/exe"
	b := e.bundle([]string{"sh", "-c", script}, func(s *specs.Spec) { s.Process.Cwd = "/tmp" })
	outputs := map[string]string{}
	for mode, out := range startedEachWay(t, e, preserved, "BERTH_NO_EARLY_RUN", "run", "--preserve-fds", "1", "--bundle", b, randomID("ahead")) {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		// 0-2, the preserved 3, and ls's own descriptor of the directory it lists.
		if len(lines) != 6 || lines[0] != "kept" || lines[1] != "0 1 2 3 4 " || lines[2] != "/tmp" || lines[3] != "lo" {
			t.Fatalf("%s: want the preserved file, descriptors 0-4, /tmp and only lo in sysfs, got:\n%s", mode, out)
		}
		host, _ := os.Readlink("/proc/self/ns/net")
		if strings.Contains(out, host) {
			t.Fatalf("%s: the container shares the host's network namespace:\n%s", mode, out)
		}
		// The namespace inode differs between runs; what the container sees otherwise must not.
		outputs[mode] = strings.Join(lines[:4], "\n") + "\n" + lines[5]
	}
	if outputs["ahead"] != outputs["here"] {
		t.Fatalf("started ahead:\n%s\nstarted by the runtime half:\n%s", outputs["ahead"], outputs["here"])
	}

	// exec: joined early from the state file (nsexec/early.c), started ahead without joining early,
	// or started by the runtime half: the same descriptors and the init's namespaces and cgroups.
	id := randomID("ahead")
	e.create(id, e.bundle([]string{"/checker", "sleep", "60s"}, nil))
	e.must("start", id)
	e.waitStatus(id, specs.StateRunning)
	execScript := "cat /proc/self/fd/3; ls /proc/self/fd | tr '\\n' ' '; echo; pwd; " +
		"for n in mnt pid net ipc uts; do [ $(readlink /proc/self/ns/$n) = $(readlink /proc/1/ns/$n) ] || echo not in the init\\'s $n namespace; done; " +
		"[ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo same cgroups"
	execOut := startedEachWay(t, e, preserved, "BERTH_NO_EARLY_EXEC", "exec", "--preserve-fds", "1", "--cwd", "/tmp", id, "sh", "-c", execScript)
	for mode, out := range execOut {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || lines[0] != "kept" || lines[1] != "0 1 2 3 4 " || lines[2] != "/tmp" || lines[3] != "same cgroups" {
			t.Fatalf("%s: want the preserved file, descriptors 0-4, /tmp, the init's namespaces and cgroups, got:\n%s", mode, out)
		}
	}
	if execOut["early"] != execOut["ahead"] || execOut["early"] != execOut["here"] {
		t.Fatalf("exec differs by how its process started: %q", execOut)
	}

	// An error before the process is needed: the command reaps it before it exits; one that joined
	// the container early has forked there, and that fork goes too.
	bad := e.bundle([]string{"true"}, func(s *specs.Spec) { s.Process.Cwd = "relative" })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "--bundle", bad, "bad-run-" + id},       // refused after the early start
		{"create", "--bundle", bad, "bad-create-" + id}, // which made a state directory and cgroups
		{"create", "--bundle", b, id},                   // a duplicate id
		{"exec", "nosuch", "true"},
		{"exec", "--tty", id, "true"},             // a terminal needs --console-socket
		{"exec", "--cwd", "relative", id, "true"}, // refused after the early join
		{"exec", "--user", "nobody:x", id, "true"},
	} {
		cmd := exec.Command(self, append([]string{e.bin, "--root", e.root}, args...)...)
		cmd.Env = append(os.Environ(), subreaperEnv+"=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		fields := strings.Fields(string(out))
		if n, err := strconv.Atoi(fields[len(fields)-1]); err != nil || n != 0 {
			t.Fatalf("%v left %s processes behind (output %q)", args, fields[len(fields)-1], out)
		}
		if args[0] != "exec" && args[len(args)-1] != id {
			left, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + args[len(args)-1])
			if _, err := os.Stat(filepath.Join(e.root, args[len(args)-1])); err == nil {
				left = append(left, "state directory")
			}
			if len(left) > 0 {
				t.Fatalf("%v left %v", args, left)
			}
		}
	}
	if st := e.state(id); st.Status != specs.StateRunning {
		t.Fatalf("the duplicate create changed the container: %+v", st)
	}

	// A create killed after the constructor made the state directory and cgroups, before the
	// record: delete --force finds them through the marker.
	killed := randomID("ahead")
	dirs := []string{"/sys/fs/cgroup/unified/berth/" + killed, "/sys/fs/cgroup/memory/berth/" + killed}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Skipf("cannot make %s to stand for an early create's cgroup: %v", d, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(e.root, killed), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, killed, nsexec.EarlyMarker), []byte(strings.Join(dirs, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("delete", "--force", killed)
	for _, d := range append(dirs, filepath.Join(e.root, killed)) {
		if _, err := os.Stat(d); err == nil {
			t.Fatalf("delete --force left %s", d)
		}
	}
}
