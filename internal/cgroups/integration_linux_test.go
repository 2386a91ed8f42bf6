package cgroups

// Integration tests against the real kernel. They need root and create uniquely named
// cgroups (berth-test-<random>) that t.Cleanup removes, after killing, by pid, every process
// the test started, also when the test fails half-way (a frozen cgroup is thawed first, or a
// v1 SIGKILL would wait for the thaw forever).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const childEnv = "BERTH_CGROUPS_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		childMain()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childMain is the re-executed test binary: a process the tests place in a cgroup and then
// ask to open device nodes, so the check happens inside the cgroup. One command per line:
// "open PATH r|w" answers "ok" or the errno name; "ping" answers "pong".
func childMain() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "open":
			flag := unix.O_RDONLY
			if f[2] == "w" {
				flag = unix.O_WRONLY
			}
			fd, err := unix.Open(f[1], flag|unix.O_CLOEXEC, 0)
			if err != nil {
				fmt.Println(unix.ErrnoName(err.(unix.Errno)))
				continue
			}
			unix.Close(fd)
			fmt.Println("ok")
		case len(f) == 1 && f[0] == "ping":
			fmt.Println("pong")
		default:
			fmt.Println("bad command")
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create cgroups in the real hierarchies")
	}
}

func uniqueName() string {
	return fmt.Sprintf("berth-test-%d-%x", os.Getpid(), rand.Uint64())
}

// realCgroup is a cgroup on the real kernel and the processes a test put in it.
type realCgroup struct {
	m     *Manager
	procs []*exec.Cmd
}

// newRealCgroup resolves and creates a cgroup and registers its cleanup: thaw, kill the
// processes we started, destroy the cgroup, then remove the parents the test created
// (those named berth-test-*).
func newRealCgroup(t *testing.T, m *Manager) *realCgroup {
	t.Helper()
	rc := &realCgroup{m: m}
	t.Cleanup(func() {
		_ = m.Thaw()
		for _, c := range rc.procs {
			if c.ProcessState == nil {
				_ = unix.Kill(c.Process.Pid, unix.SIGKILL)
				_ = c.Wait()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Destroy(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, d := range m.Paths() {
			for p := filepath.Dir(d); strings.HasPrefix(filepath.Base(p), "berth-test-"); p = filepath.Dir(p) {
				if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.ENOENT) {
					t.Errorf("cleanup: rmdir %s: %v", p, err)
				}
			}
		}
	})
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// child is a running re-exec of the test binary (see childMain).
type child struct {
	cmd *exec.Cmd
	in  *os.File
	out *os.File
	rd  *bufio.Reader
}

func (rc *realCgroup) startChild(t *testing.T) *child {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc.procs = append(rc.procs, cmd)
	inR.Close()
	outW.Close()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	return &child{cmd: cmd, in: inW, out: outR, rd: bufio.NewReader(outR)}
}

func (c *child) ask(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		t.Fatalf("child: %v", err)
	}
	if err := c.out.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	line, err := c.rd.ReadString('\n')
	if err != nil {
		t.Fatalf("child %q: %v", cmd, err)
	}
	return strings.TrimSpace(line)
}

func (rc *realCgroup) startCmd(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc.procs = append(rc.procs, cmd)
	return cmd
}

// cgroupOf returns pid's path in the hierarchy with the given /proc/<pid>/cgroup key.
func cgroupOf(t *testing.T, pid int, key string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	own, err := parseProcCgroup(data)
	if err != nil {
		t.Fatal(err)
	}
	return own[key]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func mustRead(t *testing.T, dir, file string) string {
	t.Helper()
	return readTestFile(t, dir, file)
}

func TestRealLifecycle(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	path := "/" + uniqueName() + "/ctr"
	m, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	rc := newRealCgroup(t, m)
	for key, dir := range m.Paths() {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Fatalf("hierarchy %q: %s not created: %v", key, dir, err)
		}
	}
	// Idempotent.
	if err := m.Create(); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if d, ok := m.Paths()["cpuset"]; ok {
		for _, dir := range []string{filepath.Dir(d), d} {
			if mustRead(t, dir, "cpuset.cpus") == "" || mustRead(t, dir, "cpuset.mems") == "" {
				t.Errorf("%s: cpuset.cpus/mems not copied from the parent", dir)
			}
		}
	}

	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // /dev/null
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},   // /dev/zero, read only
		},
		//lint:ignore SA1019 deprecated, applied where the kernel still has it, else a warning.
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20), Kernel: i64(-1), KernelTCP: i64(64 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(20000), Period: u64(100000), Cpus: "0", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: i64(64)},
	}
	warnings, err := m.Set(r)
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	t.Logf("warnings: %q", warnings)
	if m.IsV2() {
		d := m.Paths()[KeyV2]
		for file, want := range map[string]string{
			"memory.max": "67108864", "memory.low": "33554432", "pids.max": "64",
			"cpu.weight": "20", "cpu.max": "20000 100000", "cpuset.cpus": "0", "cpuset.mems": "0",
		} {
			if got := mustRead(t, d, file); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
		if exists(d, "memory.swap.max") && mustRead(t, d, "memory.swap.max") != "67108864" {
			t.Errorf("memory.swap.max = %q", mustRead(t, d, "memory.swap.max"))
		}
	} else {
		p := m.Paths()
		checks := map[string]string{
			"memory/memory.limit_in_bytes": "67108864", "memory/memory.soft_limit_in_bytes": "33554432",
			"pids/pids.max": "64", "cpu/cpu.shares": "512", "cpu/cpu.cfs_quota_us": "20000",
			"cpu/cpu.cfs_period_us": "100000", "cpuset/cpuset.cpus": "0", "cpuset/cpuset.mems": "0",
		}
		if exists(p["memory"], "memory.memsw.limit_in_bytes") {
			checks["memory/memory.memsw.limit_in_bytes"] = "134217728"
		}
		for kf, want := range checks {
			key, file, _ := strings.Cut(kf, "/")
			if got := mustRead(t, p[key], file); got != want {
				t.Errorf("%s = %q, want %q", kf, got, want)
			}
		}
		list := strings.Split(mustRead(t, p["devices"], "devices.list"), "\n")
		slices.Sort(list)
		if want := []string{"c 1:3 rwm", "c 1:5 r"}; !slices.Equal(list, want) {
			t.Errorf("devices.list = %q, want %q", list, want)
		}

		// Lowering both memory values below the current limit needs limit first; raising
		// them needs memsw first. Both must work on the real kernel.
		for _, lim := range [][2]int64{{32 << 20, 48 << 20}, {256 << 20, 512 << 20}, {128 << 20, -1}} {
			if _, err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(lim[0]), Swap: i64(lim[1])}}); err != nil {
				t.Fatalf("memory %v: %v", lim, err)
			}
			if got := mustRead(t, p["memory"], "memory.limit_in_bytes"); got != strconv.FormatInt(lim[0], 10) {
				t.Errorf("memory %v: limit_in_bytes = %s", lim, got)
			}
		}
		// Raising the period while lowering the quota, and back.
		for _, q := range [][2]int64{{10000, 50000}, {200000, 1000000}} {
			if _, err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(q[0]), Period: u64(uint64(q[1]))}}); err != nil {
				t.Fatalf("cpu %v: %v", q, err)
			}
			if got := mustRead(t, p["cpu"], "cpu.cfs_quota_us"); got != strconv.FormatInt(q[0], 10) {
				t.Errorf("cpu %v: cfs_quota_us = %s", q, got)
			}
		}
	}

	// Settings this host may not have are reported, not faked.
	if _, err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: u16(100)}}); err == nil {
		if d, ok := m.Paths()["blkio"]; !ok || !exists(d, "blkio.leaf_weight") {
			t.Error("blockIO.leafWeight: no error although no leaf weight file exists")
		}
	} else if !errors.Is(err, ErrNotAvailable) {
		t.Errorf("blockIO.leafWeight: %v, want ErrNotAvailable", err)
	}
	if d, ok := m.Paths()["blkio"]; ok {
		_, err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(500)}})
		switch {
		case exists(d, "blkio.weight") || exists(d, "blkio.bfq.weight"):
			if err != nil {
				t.Errorf("blockIO.weight: %v", err)
			}
		case !errors.Is(err, ErrNotAvailable):
			t.Errorf("blockIO.weight without a weight file: %v, want ErrNotAvailable", err)
		}
	}
	if _, ok := m.Paths()["net_cls"]; !ok {
		if _, err := m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(0x100001)}}); !errors.Is(err, ErrNotAvailable) {
			t.Errorf("network.classID without net_cls: %v, want ErrNotAvailable", err)
		}
	}
	if _, err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 0}}}); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("hugepage 3MB: %v, want ErrNotAvailable", err)
	}
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err == nil {
		if _, err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}}); err != nil {
			t.Errorf("hugepage 2MB: %v", err)
		}
	}
	if d, ok := m.v2Dir(); ok {
		if _, err := m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.max.descendants": "5"}}); err != nil {
			t.Errorf("unified cgroup.max.descendants: %v", err)
		} else if got := mustRead(t, d, "cgroup.max.descendants"); got != "5" {
			t.Errorf("cgroup.max.descendants = %q", got)
		}
	}

	// A process joins every hierarchy and is listed.
	c := rc.startChild(t)
	pid := c.cmd.Process.Pid
	if err := m.Join(pid); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil || !slices.Contains(pids, pid) {
		t.Fatalf("Pids() = %v, %v; want %d in it", pids, err, pid)
	}
	procKey := "memory"
	if m.IsV2() {
		procKey = ""
	}
	if got := cgroupOf(t, pid, procKey); got != path {
		t.Errorf("/proc/%d/cgroup %q: %q, want %q", pid, procKey, got, path)
	}
	// The device rules hold inside the cgroup.
	for cmd, want := range map[string]string{"open /dev/null r": "ok", "open /dev/null w": "ok", "open /dev/zero r": "ok", "open /dev/zero w": "EPERM", "open /dev/full r": "EPERM"} {
		if got := c.ask(t, cmd); got != want {
			t.Errorf("in the cgroup, %s: %s, want %s", cmd, got, want)
		}
	}

	// Freeze and thaw.
	if err := m.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := m.FreezerState(); err != nil || s != Frozen {
		t.Fatalf("FreezerState() = %q, %v", s, err)
	}
	if !m.IsV2() {
		if got := mustRead(t, m.Paths()["freezer"], "freezer.state"); got != "FROZEN" {
			t.Errorf("freezer.state = %q", got)
		}
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if s, err := m.FreezerState(); err != nil || s != Thawed {
		t.Fatalf("FreezerState() = %q, %v after Thaw", s, err)
	}
	if got := c.ask(t, "ping"); got != "pong" {
		t.Fatalf("child after thaw: %q", got)
	}

	// Statistics.
	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Pids.Current < 1 || st.Pids.Limit != 64 || st.Memory.Usage.Usage == 0 || st.CPU.Usage.Total == 0 {
		t.Errorf("Stats: pids %+v, memory usage %+v, cpu %+v", st.Pids, st.Memory.Usage, st.CPU.Usage)
	}
	if !slices.Equal(st.CPUSet.CPUs, []uint16{0}) {
		t.Errorf("Stats cpuset cpus = %v", st.CPUSet.CPUs)
	}
	js, _ := json.Marshal(st)
	for _, key := range []string{`"cpu":{"usage":{"total":`, `"memory":{`, `"pids":{"current":`, `"hugetlb":{`, `"intel_rdt":{}`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("stats JSON lacks %s: %s", key, js)
		}
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Errorf("OOMKillCount() = %d, %v", n, err)
	}

	// SIGKILL kills it.
	if err := m.Signal(ctx, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = c.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child after Signal(SIGKILL): %v", err)
	}
	waitFor(t, "empty cgroup", func() bool { p, err := m.Pids(); return err == nil && len(p) == 0 })

	// Destroy removes every directory, and again is not an error.
	if err := m.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	for key, dir := range m.Paths() {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("hierarchy %q: %s still there after Destroy (%v)", key, dir, err)
		}
		if _, err := os.Stat(filepath.Dir(dir)); err != nil {
			t.Errorf("hierarchy %q: Destroy removed the parent %s too", key, filepath.Dir(dir))
		}
	}
	if err := m.Destroy(ctx); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// A shell that forks children inside the cgroup: Signal must reach all of them, including
// through the freeze/signal/thaw path on v1, and a non-fatal signal must leave a paused
// container paused.
func TestRealSignal(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	ctx := context.Background()
	m, err := New(Config{Path: "/" + uniqueName()})
	if err != nil {
		t.Fatal(err)
	}
	rc := newRealCgroup(t, m)
	sh := exec.Command("sh", "-c", "read x; sleep 1000 & sleep 1000 & wait")
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	rc.procs = append(rc.procs, sh)
	if err := m.Join(sh.Process.Pid); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "go")
	waitFor(t, "three processes", func() bool { p, _ := m.Pids(); return len(p) == 3 })
	pids, _ := m.Pids()
	// Kill the sleeps when the test ends, whatever happens: they are not our children.
	t.Cleanup(func() {
		for _, p := range pids {
			if p != sh.Process.Pid {
				_ = unix.Kill(p, unix.SIGKILL)
			}
		}
	})

	// Paused container, SIGTERM: still frozen afterwards, processes still there.
	if err := m.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Signal(ctx, unix.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.FreezerState(); s != Frozen {
		t.Errorf("after Signal(SIGCONT) on a frozen cgroup: %s, want FROZEN", s)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}

	if err := m.Signal(ctx, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait()
	waitFor(t, "every process gone", func() bool { p, err := m.Pids(); return err == nil && len(p) == 0 })
	if s, _ := m.FreezerState(); s != Thawed {
		t.Errorf("after Signal(SIGKILL): %s, want THAWED", s)
	}
	if err := m.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
}

// A relative cgroupsPath is below the cgroup this process is in, in each hierarchy. On the
// CI machine the test process is in a memory cgroup other than the root, so the two cases
// differ there.
func TestRealRelativePath(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	name := uniqueName()
	m, err := New(Config{Path: name})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	own, err := parseProcCgroup(data)
	if err != nil {
		t.Fatal(err)
	}
	rc := newRealCgroup(t, m)
	cmd := rc.startCmd(t, "sleep", "1000")
	if err := m.Join(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for key := range m.Paths() {
		procKey := key
		if key == KeyUnified {
			procKey = ""
		}
		want := filepath.Join(own[procKey], name)
		if got := cgroupOf(t, cmd.Process.Pid, procKey); got != want {
			t.Errorf("hierarchy %q: process is in %q, want %q", key, got, want)
		}
	}
	if err := m.Signal(context.Background(), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if err := m.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The cgroup v2 device filter, for real: on a hybrid host in the unified hierarchy (a real
// cgroup2 hierarchy, where the kernel runs the program exactly as on a pure v2 host), on a
// pure v2 host in the normal place.
func TestRealDeviceFilterV2(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	probe, err := New(Config{Path: "/" + uniqueName()})
	if err != nil {
		t.Fatal(err)
	}
	dir, ok := probe.v2Dir()
	if !ok {
		t.Skip("skipping: no cgroup2 hierarchy is mounted")
	}
	m := Load(map[string]string{KeyV2: dir}) // the v2 code path, whatever the host
	rc := newRealCgroup(t, m)
	c := rc.startChild(t)
	if err := m.Join(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cg)
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	steps := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  map[string]string
	}{
		{
			name:  "null allowed",
			rules: []specs.LinuxDeviceCgroup{denyAll, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}},
			want:  map[string]string{"open /dev/null r": "ok", "open /dev/null w": "ok", "open /dev/zero r": "EPERM"},
		},
		{
			name:  "update: zero allowed instead",
			rules: []specs.LinuxDeviceCgroup{denyAll, {Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}},
			want:  map[string]string{"open /dev/null r": "EPERM", "open /dev/zero r": "ok"},
		},
		{
			name: "allow all, later deny writes to null",
			rules: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"},
				{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"}},
			want: map[string]string{"open /dev/null r": "ok", "open /dev/null w": "EPERM", "open /dev/zero w": "ok"},
		},
	}
	for _, s := range steps {
		if _, err := m.Set(&specs.LinuxResources{Devices: s.rules}); err != nil {
			t.Fatalf("%s: Set: %v", s.name, err)
		}
		// The old program is detached once the new one is attached.
		if ids, err := attachedDevicePrograms(cg); err != nil || len(ids) != 1 {
			t.Errorf("%s: attached programs %v, %v; want exactly one", s.name, ids, err)
		}
		for cmd, want := range s.want {
			if got := c.ask(t, cmd); got != want {
				t.Errorf("%s: %s: %s, want %s", s.name, cmd, got, want)
			}
		}
	}
	// The cgroup2 freezer, statistics and cgroup.kill, on the same real cgroup2 cgroup.
	ctx := context.Background()
	if err := m.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := m.FreezerState(); err != nil || s != Frozen {
		t.Errorf("FreezerState() = %q, %v", s, err)
	}
	if got := mustRead(t, dir, "cgroup.freeze"); got != "1" {
		t.Errorf("cgroup.freeze = %q", got)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "thawed", func() bool { s, _ := m.FreezerState(); return s == Thawed })
	if got := c.ask(t, "ping"); got != "pong" {
		t.Fatalf("child after thaw: %q", got)
	}
	st, err := m.Stats()
	if err != nil {
		t.Errorf("Stats: %v", err)
	} else if st.CPU.Usage.Total == 0 {
		t.Errorf("Stats: no CPU usage from cpu.stat: %+v", st.CPU)
	}
	if !exists(dir, "cgroup.kill") {
		t.Log("no cgroup.kill (kernel < 5.14): Signal uses freeze, kill, thaw")
	}
	if err := m.Signal(ctx, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err == nil {
		t.Error("child survived Signal(SIGKILL)")
	}
	waitFor(t, "empty cgroup", func() bool { p, err := m.Pids(); return err == nil && len(p) == 0 })

	// Outside the cgroup nothing changed.
	if f, err := os.Open("/dev/zero"); err != nil {
		t.Errorf("test process: %v", err)
	} else {
		f.Close()
	}
}

// Destroy gives up on a cgroup that still has a live process when ctx says so, and removes
// cgroups a container created below its own, deepest first.
func TestRealDestroyBusyAndNested(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	m, err := New(Config{Path: "/" + uniqueName()})
	if err != nil {
		t.Fatal(err)
	}
	rc := newRealCgroup(t, m)
	cmd := rc.startCmd(t, "sleep", "1000")
	if err := m.Join(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	var nested []string
	for _, d := range m.Paths() {
		n := filepath.Join(d, "sub", "subsub")
		if err := os.MkdirAll(n, 0o755); err != nil {
			t.Fatal(err)
		}
		nested = append(nested, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = m.Destroy(ctx)
	if !errors.Is(err, unix.EBUSY) {
		t.Errorf("Destroy with a live process: %v, want EBUSY", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Destroy took %s despite a 200ms deadline", d)
	}
	// The empty nested cgroups went; the busy one stayed.
	for _, n := range nested {
		if _, err := os.Stat(filepath.Dir(n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Destroy", filepath.Dir(n))
		}
	}
	// Destroy started while the process is alive must retry EBUSY until it is gone.
	done := make(chan error, 1)
	go func() { done <- m.Destroy(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	if err := unix.Kill(cmd.Process.Pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Paths() {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Destroy", d)
		}
	}
}
