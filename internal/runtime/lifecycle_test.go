package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunExitCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.runOut([]string{"/checker", "exit", "7"}, nil)
	if r.code != 7 {
		t.Fatalf("run: want exit 7, got %v", r)
	}
	// Without a pid namespace of its own, the shell is not an init that ignores signals.
	r = e.runOut([]string{"sh", "-c", "kill -9 $$"}, func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	})
	if r.code != 128+9 {
		t.Fatalf("run of a process killed by SIGKILL: want exit 137, got %v", r)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := randomID("life")
	b := e.bundle([]string{"/checker", "sigwait"}, nil)
	e.create(id, b)
	s := e.state(id)
	if s.Status != "created" || s.Pid <= 0 || s.Bundle != b || s.ID != id {
		t.Fatalf("after create: %+v", s)
	}
	if r := e.rt("start", "nosuch"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("start of a missing container: %v", r)
	}
	if r := e.rt("delete", id); r.code == 0 || !strings.Contains(r.stderr, "created") {
		t.Fatalf("delete of a created container must be refused: %v", r)
	}
	if e.state(id).Status != "created" {
		t.Fatal("a refused delete changed the container")
	}
	if r := e.rt("create", "--bundle", b, id); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate id: %v", r)
	}
	e.must("start", id)
	if r := e.rt("start", id); r.code == 0 {
		t.Fatalf("second start succeeded: %v", r)
	}
	e.waitStatus(id, "running")
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.must("list", "--format", "json").stdout), &list); err != nil || len(list) != 1 || list[0]["id"] != id {
		t.Fatalf("list: %v %v", list, err)
	}
	if out := e.must("list", "-q").stdout; strings.TrimSpace(out) != id {
		t.Fatalf("list -q: %q", out)
	}
	var pids []int
	if err := json.Unmarshal([]byte(e.must("ps", "--format", "json", id).stdout), &pids); err != nil || len(pids) != 1 || pids[0] != s.Pid {
		t.Fatalf("ps: %v %v (init %d)", pids, err, s.Pid)
	}
	if r := e.rt("kill", id, "NOSUCHSIG"); r.code == 0 || !strings.Contains(r.stderr, "unknown signal") {
		t.Fatalf("unknown signal: %v", r)
	}
	if r := e.rt("delete", id); r.code == 0 || !strings.Contains(r.stderr, "running") {
		t.Fatalf("delete of a running container must be refused: %v", r)
	}
	e.must("pause", id)
	e.waitStatus(id, "paused")
	e.must("resume", id)
	e.waitStatus(id, "running")
	e.must("kill", id, "15")
	e.waitStatus(id, "stopped")
	if s := e.state(id); s.Pid != 0 {
		t.Fatalf("stopped container reports pid %d", s.Pid)
	}
	if r := e.rt("kill", id, "KILL"); r.code == 0 {
		t.Fatalf("kill of a stopped container succeeded: %v", r)
	}
	e.must("delete", id)
	if r := e.rt("state", id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("state after delete: %v", r)
	}
	// containerd deletes, then deletes again with --force: the second must succeed.
	e.must("delete", "--force", id)
}

func TestExec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := randomID("exec")
	b := e.bundle([]string{"/checker", "sleep", "60s"}, nil)
	e.create(id, b)
	e.must("start", id)
	r := e.rt("exec", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "1000:1000", "--additional-gids", "5", id, "/checker", "id")
	if r.code != 0 || !strings.Contains(r.stdout, "uid=1000 gid=1000") || !strings.Contains(r.stdout, "groups=[5]") {
		t.Fatalf("exec id: %v", r)
	}
	if r := e.rt("exec", "--env", "FOO=bar", id, "/checker", "env"); !strings.Contains(r.stdout, "FOO=bar") {
		t.Fatalf("exec env: %v", r)
	}
	if r := e.rt("exec", id, "/checker", "exit", "3"); r.code != 3 {
		t.Fatalf("exec exit code: %v", r)
	}
	if r := e.rt("exec", id, "/nonexistent"); r.code == 0 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("exec of a missing program: %v", r)
	}
	proc := filepath.Join(t.TempDir(), "process.json")
	p := specs.Process{Args: []string{"/checker", "sleep", "30s"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	pj, _ := json.Marshal(p)
	if err := os.WriteFile(proc, pj, 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.must("exec", "--process", proc, "--detach", "--pid-file", pidFile, id)
	pid, err := os.ReadFile(pidFile)
	if err != nil || len(pid) == 0 {
		t.Fatalf("pid file: %q %v", pid, err)
	}
	var pids []int
	_ = json.Unmarshal([]byte(e.must("ps", "--format", "json", id).stdout), &pids)
	if len(pids) != 2 {
		t.Fatalf("after exec -d the container has pids %v", pids)
	}
	e.must("kill", "--all", id, "KILL")
	e.waitStatus(id, "stopped")
	if r := e.rt("exec", id, "/checker", "id"); r.code == 0 || !strings.Contains(r.stderr, "stopped") {
		t.Fatalf("exec in a stopped container: %v", r)
	}
}

func TestUserCapabilitiesAndLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.runOut([]string{"/checker", "status"}, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}}
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"},
			Inheritable: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"},
		}
		s.Process.NoNewPrivileges = true
	})
	for _, want := range []string{"CapBnd: 0000000000000021", "CapEff: 0000000000000020", "CapAmb: 0000000000000020", "NoNewPrivs: 1", "Uid: 1000 1000 1000 1000", "Groups: 10 20"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("want %q in %v", want, r)
		}
	}
	// The shell, not the checker: a Go program raises its own soft limit when it starts.
	r = e.runOut([]string{"sh", "-c", "echo nofile $(ulimit -Sn) $(ulimit -Hn)"}, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}}
	})
	if !strings.Contains(r.stdout, "nofile 512 1024") {
		t.Errorf("rlimit: %v", r)
	}
	// Without an rlimit in the spec, the container must not inherit the soft limit that the Go
	// runtime raises for itself.
	soft, err := exec.Command("sh", "-c", "ulimit -Sn").Output()
	if err != nil {
		t.Fatal(err)
	}
	r = e.runOut([]string{"sh", "-c", "echo nofile $(ulimit -Sn) $(ulimit -Hn)"}, nil)
	if want := "nofile " + strings.TrimSpace(string(soft)) + " "; !strings.Contains(r.stdout, want) {
		t.Errorf("inherited rlimit: want %q, got %v", want, r)
	}
}

// TestOOMScoreAdjWithoutCapSysResource: lowering oom_score_adj needs CAP_SYS_RESOURCE; where the
// runtime lacks it, the container runs with a warning that says so.
func TestOOMScoreAdj(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.runOut([]string{"/checker", "oom"}, func(s *specs.Spec) {
		v := 500
		s.Process.OOMScoreAdj = &v
	})
	if r.code != 0 || !strings.Contains(r.stdout, "oom_score_adj 500") {
		t.Fatalf("positive oomScoreAdj: %v", r)
	}
	r = e.runOut([]string{"/checker", "oom"}, func(s *specs.Spec) {
		v := -500
		s.Process.OOMScoreAdj = &v
	})
	if r.code != 0 {
		t.Fatalf("negative oomScoreAdj: %v", r)
	}
	if !strings.Contains(r.stdout, "oom_score_adj -500") && !strings.Contains(r.stderr, "CAP_SYS_RESOURCE") {
		t.Fatalf("negative oomScoreAdj neither applied nor explained: %v", r)
	}
}

// TestRunForwardsSignals: an attached run relays the signals it receives to the container.
func TestRunForwardsSignals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"/checker", "sigwait"}, nil)
	out := tempFile(t)
	cmd := exec.Command(runtimeBin, "--root", e.root, "run", "--bundle", b, randomID("sig"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readAll(t, out), "ready") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the container never became ready: %q", readAll(t, out))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v: %s", err, readAll(t, out))
	}
	if got := readAll(t, out); !strings.Contains(got, "signal 10") {
		t.Fatalf("the container did not get SIGUSR1: %q", got)
	}
}
