package runtime_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// leftovers lists what containers whose ids start with prefix left behind: mounts on the host,
// cgroup directories, processes, entries in the state root, and descriptors of this process.
type leftovers struct {
	mounts  int
	cgroups []string
	procs   []string
	state   []string
	fds     int
}

func snapshot(t *testing.T, e *env, prefix string) leftovers {
	t.Helper()
	var l leftovers
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	l.mounts = strings.Count(string(mi), "\n")
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + prefix + "*")
	more, _ := filepath.Glob("/sys/fs/cgroup/berth/" + prefix + "*")
	l.cgroups = append(dirs, more...)
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "/berth/"+prefix) {
			l.procs = append(l.procs, filepath.Dir(p))
		}
	}
	entries, _ := os.ReadDir(e.root)
	for _, en := range entries {
		l.state = append(l.state, en.Name())
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	l.fds = len(fds)
	return l
}

// settle takes a snapshot once exited containers' processes are gone: their inits are reparented to
// the host's init (or a subreaper), which reaps them when it gets to it.
func settle(t *testing.T, e *env, prefix string) leftovers {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	after := snapshot(t, e, prefix)
	for len(after.procs) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		after = snapshot(t, e, prefix)
	}
	return after
}

func checkNoLeftovers(t *testing.T, before, after leftovers) {
	t.Helper()
	if after.mounts != before.mounts {
		t.Errorf("host mounts: %d before, %d after", before.mounts, after.mounts)
	}
	if len(after.cgroups) > 0 {
		t.Errorf("cgroups left: %v", after.cgroups)
	}
	if len(after.procs) > 0 {
		t.Errorf("processes left: %v", after.procs)
	}
	if len(after.state) > 0 {
		t.Errorf("state left: %v", after.state)
	}
	if after.fds > before.fds {
		t.Errorf("descriptors of the test process: %d before, %d after", before.fds, after.fds)
	}
}

// TestCyclesLeaveNothing runs create/start/delete many times and checks that nothing stays behind.
func TestCyclesLeaveNothing(t *testing.T) {
	e := newEnv(t)
	n := 1000
	if testing.Short() {
		n = 50
	}
	prefix := randomID("cyc")
	b := e.bundle([]string{"/checker", "exit", "0"}, nil)
	before := snapshot(t, e, prefix)
	for i := range n {
		id := prefix + "-" + strconv.Itoa(i)
		e.must("create", "--bundle", b, id)
		e.must("start", id)
		e.waitStatus(id, "stopped")
		e.must("delete", id)
	}
	checkNoLeftovers(t, before, settle(t, e, prefix))
}

// TestKilledCreateIsCleanedUp kills `create` with SIGKILL at random points and checks that
// `delete --force` removes everything it had made.
func TestKilledCreateIsCleanedUp(t *testing.T) {
	e := newEnv(t)
	prefix := randomID("kill")
	b := e.bundle([]string{"/checker", "sleep", "30s"}, nil)
	before := snapshot(t, e, prefix)
	n := 40
	if testing.Short() {
		n = 10
	}
	for i := range n {
		id := prefix + "-" + strconv.Itoa(i)
		cmd := exec.Command(runtimeBin, "--root", e.root, "create", "--bundle", b, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Spread the kills over the whole create, which takes a few milliseconds.
		time.Sleep(time.Duration(rand.IntN(12000)) * time.Microsecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if r := e.rt("delete", "--force", id); r.code != 0 {
			t.Fatalf("delete --force after a killed create (%d): %v", i, r)
		}
	}
	// A killed create may leave its container process for a moment: it notices the runtime is gone
	// and exits.
	checkNoLeftovers(t, before, settle(t, e, prefix))
}
