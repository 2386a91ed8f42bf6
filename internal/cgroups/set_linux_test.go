package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func boolp(v bool) *bool   { return &v }
func files(ws []fileWrite) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.file+"="+w.value)
	}
	return out
}

const unlimitedV1 = 9223372036854771712 // what v1 shows for "no limit"

func TestPlanMemoryV1Order(t *testing.T) {
	t.Parallel()
	const (
		limit = "memory.limit_in_bytes"
		memsw = "memory.memsw.limit_in_bytes"
	)
	tests := []struct {
		name     string
		mem      specs.LinuxMemory
		curLimit uint64
		hasMemsw bool
		want     []string
		wantErr  error
	}{
		{
			name: "new cgroup: limit first, memsw then comes down to a value above it",
			mem:  specs.LinuxMemory{Limit: i64(100), Swap: i64(200)}, curLimit: unlimitedV1, hasMemsw: true,
			want: []string{limit + "=100", memsw + "=200"},
		},
		{
			name: "raising both: memsw first",
			mem:  specs.LinuxMemory{Limit: i64(300), Swap: i64(400)}, curLimit: 100, hasMemsw: true,
			want: []string{memsw + "=400", limit + "=300"},
		},
		{
			name: "lowering both below the current limit: limit first",
			mem:  specs.LinuxMemory{Limit: i64(50), Swap: i64(80)}, curLimit: 100, hasMemsw: true,
			want: []string{limit + "=50", memsw + "=80"},
		},
		{
			name: "memsw equal to the current limit: memsw first is valid",
			mem:  specs.LinuxMemory{Limit: i64(50), Swap: i64(100)}, curLimit: 100, hasMemsw: true,
			want: []string{memsw + "=100", limit + "=50"},
		},
		{
			name: "unlimited swap: memsw first",
			mem:  specs.LinuxMemory{Limit: i64(50), Swap: i64(-1)}, curLimit: 100, hasMemsw: true,
			want: []string{memsw + "=-1", limit + "=50"},
		},
		{
			name: "limit alone",
			mem:  specs.LinuxMemory{Limit: i64(50)}, curLimit: 100, hasMemsw: true,
			want: []string{limit + "=50"},
		},
		{
			name: "no limit lifts memsw too, first",
			mem:  specs.LinuxMemory{Limit: i64(-1)}, curLimit: 100, hasMemsw: true,
			want: []string{memsw + "=-1", limit + "=-1"},
		},
		{
			name: "no limit without swap accounting",
			mem:  specs.LinuxMemory{Limit: i64(-1)}, curLimit: 100, hasMemsw: false,
			want: []string{limit + "=-1"},
		},
		{
			name: "swap 0 means unset",
			mem:  specs.LinuxMemory{Limit: i64(50), Swap: i64(0)}, curLimit: 100, hasMemsw: true,
			want: []string{limit + "=50"},
		},
		{
			name: "swap alone",
			mem:  specs.LinuxMemory{Swap: i64(500)}, curLimit: 100, hasMemsw: true,
			want: []string{memsw + "=500"},
		},
		{
			name: "swap without swap accounting",
			mem:  specs.LinuxMemory{Limit: i64(50), Swap: i64(500)}, curLimit: 100, hasMemsw: false,
			wantErr: ErrNotAvailable,
		},
		{
			name: "unlimited swap without swap accounting is a no-op",
			mem:  specs.LinuxMemory{Limit: i64(50), Swap: i64(-1)}, curLimit: 100, hasMemsw: false,
			want: []string{limit + "=50"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planMemoryV1(&tc.mem, tc.curLimit, tc.hasMemsw)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(files(got), tc.want) {
				t.Errorf("got %q, want %q", files(got), tc.want)
			}
			// Whatever the order, the kernel's invariant limit <= memsw must hold after
			// every write.
			curMemsw := uint64(unlimitedV1)
			cur := tc.curLimit
			for _, w := range got {
				v := asLimit(mustInt(t, w.value))
				if w.file == limit {
					cur = v
				} else {
					curMemsw = v
				}
				if cur > curMemsw && tc.hasMemsw {
					t.Errorf("after %s=%s: limit %d > memsw %d", w.file, w.value, cur, curMemsw)
				}
			}
		})
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var v int64
	neg := strings.HasPrefix(s, "-")
	for _, c := range strings.TrimPrefix(s, "-") {
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v
}

func TestCheckMemoryValues(t *testing.T) {
	t.Parallel()
	for _, mem := range []specs.LinuxMemory{
		{Limit: i64(100), Swap: i64(50)},
		{Limit: i64(-2)},
		{Reservation: i64(-5)},
	} {
		if err := checkMemoryValues(&mem); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", mem, err)
		}
	}
	for _, mem := range []specs.LinuxMemory{
		{Limit: i64(100), Swap: i64(100)},
		{Limit: i64(-1), Swap: i64(50)},
		{Limit: i64(100), Swap: i64(-1)},
		{Limit: i64(100), Swap: i64(0)},
	} {
		if err := checkMemoryValues(&mem); err != nil {
			t.Errorf("%+v: err = %v", mem, err)
		}
	}
}

func TestSwapMaxV2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		swap, limit int64
		want        string
		err         bool
	}{
		{swap: 200, limit: 100, want: "100"},
		{swap: 100, limit: 100, want: "0"},
		{swap: -1, limit: 100, want: "max"},
		{swap: 300, limit: -1, want: "300"},
		{swap: 50, limit: 100, err: true},
	}
	for _, tc := range tests {
		got, err := swapMaxV2(tc.swap, tc.limit)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("swapMaxV2(%d, %d) = %q, %v; want %q", tc.swap, tc.limit, got, err, tc.want)
		}
	}
}

func TestSharesToWeight(t *testing.T) {
	t.Parallel()
	for shares, want := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 3: 1, 1024: 39, 2048: 79, 262144: 10000, 1 << 30: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	// Monotonic over the whole v1 range.
	prev := uint64(0)
	for s := uint64(2); s <= 262144; s++ {
		w := sharesToWeight(s)
		if w < prev || w < 1 || w > 10000 {
			t.Fatalf("sharesToWeight(%d) = %d after %d", s, w, prev)
		}
		prev = w
	}
}

func TestBlkioWeightToIOWeight(t *testing.T) {
	t.Parallel()
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 500: 4950, 1000: 10000, 5: 1, 2000: 10000} {
		if got := blkioWeightToIOWeight(w); got != want {
			t.Errorf("blkioWeightToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestCPUMaxV2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		quota  *int64
		period *uint64
		cur    string
		want   string
	}{
		{i64(50000), u64(100000), "max 100000", "50000 100000"},
		{i64(50000), nil, "max 250000", "50000 250000"},
		{nil, u64(10000), "20000 100000", "20000 10000"},
		{i64(-1), nil, "20000 100000", "max 100000"},
	}
	for _, tc := range tests {
		got, err := cpuMaxV2(tc.quota, tc.period, tc.cur)
		if err != nil || got != tc.want {
			t.Errorf("cpuMaxV2(%v, %v, %q) = %q, %v; want %q", tc.quota, tc.period, tc.cur, got, err, tc.want)
		}
	}
	if _, err := cpuMaxV2(nil, u64(1), "garbage"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad cpu.max: err = %v", err)
	}
}

func TestUnifiedController(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"memory.high": "memory", "cpu.weight": "cpu", "io.max": "io", "hugetlb.1GB.max": "hugetlb",
		"cgroup.max.depth": "cgroup", "memory.oom.group": "memory",
	}
	for k, want := range good {
		if got, err := unifiedController(k); err != nil || got != want {
			t.Errorf("unifiedController(%q) = %q, %v; want %q", k, got, err, want)
		}
	}
	for _, k := range []string{
		"", ".", "..", "../memory.max", "memory.max/../x", "/etc/passwd", "sub/memory.max",
		"memory..max", "memory", ".max", "memory.", "memory.max\n", "memory max", "a\x00.b", `memory\max`,
	} {
		if _, err := unifiedController(k); !errors.Is(err, ErrInvalid) {
			t.Errorf("unifiedController(%q): err = %v, want ErrInvalid", k, err)
		}
	}
}

func TestCheckPageSize(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"2MB", "1GB", "64KB", "16GB"} {
		if err := checkPageSize(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "MB", "2M", "2mb", "0MB", "02MB", "2TB", "../2MB", "2MB.", "-2MB", "2 MB"} {
		if err := checkPageSize(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err = %v, want ErrInvalid", s, err)
		}
	}
}

// v1Tree makes a fake v1 cgroup with the files Set reads and writes, and returns a manager
// for it.
func v1Tree(t *testing.T) (*Manager, string) {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"memory/c/memory.limit_in_bytes":            "9223372036854771712",
		"memory/c/memory.memsw.limit_in_bytes":      "9223372036854771712",
		"memory/c/memory.soft_limit_in_bytes":       "9223372036854771712",
		"memory/c/memory.swappiness":                "60",
		"memory/c/memory.oom_control":               "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
		"memory/c/memory.use_hierarchy":             "1",
		"memory/c/memory.usage_in_bytes":            "4096",
		"memory/c/memory.kmem.tcp.limit_in_bytes":   "9223372036854771712",
		"cpu/c/cpu.shares":                          "1024",
		"cpu/c/cpu.cfs_period_us":                   "100000",
		"cpu/c/cpu.cfs_quota_us":                    "-1",
		"cpu/c/cpu.rt_period_us":                    "1000000",
		"cpu/c/cpu.rt_runtime_us":                   "0",
		"cpuset/c/cpuset.cpus":                      "",
		"cpuset/c/cpuset.mems":                      "",
		"pids/c/pids.max":                           "max",
		"blkio/c/blkio.bfq.weight":                  "100",
		"blkio/c/blkio.throttle.read_bps_device":    "",
		"blkio/c/blkio.throttle.write_iops_device":  "",
		"hugetlb/c/hugetlb.2MB.limit_in_bytes":      "",
		"hugetlb/c/hugetlb.2MB.rsvd.limit_in_bytes": "",
		"hugetlb/c/hugetlb.1GB.limit_in_bytes":      "",
		"devices/c/devices.allow":                   "",
		"devices/c/devices.deny":                    "",
		"unified/c/cgroup.controllers":              "",
		"unified/c/cgroup.max.depth":                "max",
	}
	writeTree(t, root, files)
	paths := map[string]string{KeyUnified: filepath.Join(root, "unified/c")}
	for _, c := range []string{"memory", "cpu", "cpuset", "pids", "blkio", "hugetlb", "devices"} {
		paths[c] = filepath.Join(root, c, "c")
	}
	return Load(paths), root
}

func TestSetV1Fake(t *testing.T) {
	t.Parallel()
	m, root := v1Tree(t)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit: i64(1 << 20), Swap: i64(2 << 20), Reservation: i64(1 << 19), Swappiness: u64(10),
			//lint:ignore SA1019 configs for older runtimes still set it; Set must warn.
			DisableOOMKiller: boolp(true), Kernel: i64(1 << 20), KernelTCP: i64(1 << 20),
		},
		CPU:  &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(200000), Cpus: "0", Mems: "0"},
		Pids: &specs.LinuxPids{Limit: i64(0)},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                  u16(300),
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 7}},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Unified:        map[string]string{"cgroup.max.depth": "3"},
	}
	warnings, err := m.Set(r)
	if err != nil {
		t.Fatal(err)
	}
	// memory.kmem.limit_in_bytes does not exist in the fake tree: a warning, not an error.
	if len(warnings) != 1 || !strings.Contains(warnings[0], "linux.resources.memory.kernel:") {
		t.Errorf("warnings = %q", warnings)
	}
	for file, want := range map[string]string{
		"memory/c/memory.limit_in_bytes": "1048576", "memory/c/memory.memsw.limit_in_bytes": "2097152",
		"memory/c/memory.soft_limit_in_bytes": "524288", "memory/c/memory.swappiness": "10",
		"memory/c/memory.oom_control": "1", "memory/c/memory.kmem.tcp.limit_in_bytes": "1048576",
		"cpu/c/cpu.shares": "512", "cpu/c/cpu.cfs_quota_us": "50000", "cpu/c/cpu.cfs_period_us": "200000",
		"cpuset/c/cpuset.cpus": "0", "cpuset/c/cpuset.mems": "0",
		"pids/c/pids.max":          "0",
		"blkio/c/blkio.bfq.weight": "300", "blkio/c/blkio.throttle.read_bps_device": "8:0 1000",
		"blkio/c/blkio.throttle.write_iops_device": "8:16 7",
		"hugetlb/c/hugetlb.2MB.limit_in_bytes":     "4194304", "hugetlb/c/hugetlb.2MB.rsvd.limit_in_bytes": "4194304",
		"unified/c/cgroup.max.depth": "3",
	} {
		if got := readTestFile(t, root, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}

	// Errors name the field and wrap the right class.
	for _, tc := range []struct {
		r     specs.LinuxResources
		field string
		class error
	}{
		{specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: u16(10)}}, "linux.resources.blockIO.leafWeight", ErrNotAvailable},
		{specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(1)}}, "linux.resources.network.classID", ErrNotAvailable},
		{specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "64KB"}}}, "linux.resources.hugepageLimits[0].pageSize", ErrNotAvailable},
		{specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "../x"}}}, "linux.resources.hugepageLimits[0].pageSize", ErrInvalid},
		{specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, `linux.resources.unified["memory.high"]`, ErrNotAvailable},
		{specs.LinuxResources{Unified: map[string]string{"../../memory.high": "1"}}, `linux.resources.unified["../../memory.high"]`, ErrInvalid},
		{specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), CheckBeforeUpdate: boolp(true)}}, "linux.resources.memory.limit", ErrInvalid},
		{specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(200), Swap: i64(100)}}, "linux.resources.memory.swap", ErrInvalid},
		{specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64(1)}}, "linux.resources.cpu.idle", ErrNotAvailable},
		{specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}, "linux.resources.devices[0].type", ErrInvalid},
		{specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwx"}}}, "linux.resources.devices[0].access", ErrInvalid},
		{specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx4_0": {HcaHandles: u32(1)}}}, "linux.resources.rdma", ErrNotAvailable},
		{specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx 0": {HcaHandles: u32(1)}}}, `linux.resources.rdma["mlx 0"]`, ErrInvalid},
	} {
		_, err := m.Set(&tc.r)
		if !errors.Is(err, tc.class) || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("Set(%+v): err = %v, want %v naming %s", tc.r, err, tc.class, tc.field)
		}
	}
	// A validation error writes nothing.
	_, err = m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}, Unified: map[string]string{"a/b.c": "1"}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if got := readTestFile(t, root, "pids/c/pids.max"); got != "0" {
		t.Errorf("pids.max = %q after a refused Set", got)
	}
	// Negative pids limit is "max".
	if _, err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	if got := readTestFile(t, root, "pids/c/pids.max"); got != "max" {
		t.Errorf("pids.max = %q", got)
	}
}

func TestSetDevicesV1Fake(t *testing.T) {
	t.Parallel()
	m, root := v1Tree(t)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "a", Major: i64(136), Access: "rw"},
		{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"},
	}
	// Each line is its own write(2) through one open of each file, as cgroupfs wants them; a
	// plain file keeps them all, in order. The sequence across both files is checked with the
	// rule renderer.
	rs, err := deviceRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range rs {
		lines = append(lines, r.v1Lines()...)
	}
	want := []string{"a", "c 1:3 rwm", "b 136:* rw", "c 136:* rw", "c 1:3 w"}
	if !slices.Equal(lines, want) {
		t.Errorf("v1 lines = %q, want %q", lines, want)
	}
	if _, err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatal(err)
	}
	if got := readTestFile(t, root, "devices/c/devices.deny"); got != "ac 1:3 w" {
		t.Errorf("devices.deny = %q, want the writes \"a\" and \"c 1:3 w\"", got)
	}
	if got := readTestFile(t, root, "devices/c/devices.allow"); got != "c 1:3 rwmb 136:* rwc 136:* rw" {
		t.Errorf("devices.allow = %q, want the writes of the three allow lines", got)
	}
}

func v2Tree(t *testing.T, controllers string) (*Manager, string) {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"c/cgroup.controllers": controllers,
		"c/memory.max":         "max",
		"c/memory.swap.max":    "max",
		"c/memory.low":         "0",
		"c/memory.current":     "8192",
		"c/cpu.weight":         "100",
		"c/cpu.max":            "max 100000",
		"c/cpu.max.burst":      "0",
		"c/cpuset.cpus":        "",
		"c/pids.max":           "max",
		"c/io.weight":          "default 100",
		"c/io.max":             "",
		"c/hugetlb.2MB.max":    "max",
		"c/memory.high":        "max",
	})
	return Load(map[string]string{KeyV2: filepath.Join(root, "c")}), filepath.Join(root, "c")
}

func TestSetV2Fake(t *testing.T) {
	t.Parallel()
	m, dir := v2Tree(t, "cpuset cpu io memory hugetlb pids")
	warnings, err := m.Set(&specs.LinuxResources{
		//lint:ignore SA1019 configs for older runtimes still set it; Set must warn on v2.
		Memory: &specs.LinuxMemory{Limit: i64(1 << 20), Swap: i64(3 << 20), Reservation: i64(1 << 19), Swappiness: u64(1), Kernel: i64(5)},
		CPU:    &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Burst: u64(1000), Cpus: "0-1"},
		Pids:   &specs.LinuxPids{Limit: i64(42)},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                 u16(1000),
			ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 0}},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}},
		Unified:        map[string]string{"memory.high": "900000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 {
		t.Errorf("warnings = %q, want kernel and swappiness", warnings)
	}
	for file, want := range map[string]string{
		"memory.max": "1048576", "memory.swap.max": "2097152", "memory.low": "524288",
		"cpu.weight": "39", "cpu.max": "50000 100000", "cpu.max.burst": "1000", "cpuset.cpus": "0-1",
		"pids.max": "42", "io.weight": "default 10000", "io.max": "8:0 wbps=max", "hugetlb.2MB.max": "2097152",
		"memory.high": "900000",
	} {
		if got := readTestFile(t, dir, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// Swap alone is converted against the limit in force.
	if _, err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(5 << 20)}}); err != nil {
		t.Fatal(err)
	}
	if got := readTestFile(t, dir, "memory.swap.max"); got != "4194304" {
		t.Errorf("memory.swap.max = %q", got)
	}
	for _, tc := range []struct {
		r     specs.LinuxResources
		field string
		class error
	}{
		{specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1)}}, "linux.resources.cpu.realtimeRuntime", ErrNotAvailable},
		{specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(1)}}, "linux.resources.network.classID", ErrNotAvailable},
		{specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: u16(1)}}, "linux.resources.blockIO.leafWeight", ErrNotAvailable},
		{specs.LinuxResources{Unified: map[string]string{"rdma.max": "x"}}, `linux.resources.unified["rdma.max"]`, ErrNotAvailable},
		{specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(10), CheckBeforeUpdate: boolp(true)}}, "linux.resources.memory.limit", ErrInvalid},
	} {
		_, err := m.Set(&tc.r)
		if !errors.Is(err, tc.class) || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("Set(%+v): err = %v, want %v naming %s", tc.r, err, tc.class, tc.field)
		}
	}
	// A controller the parent did not enable is reported as such.
	m2, _ := v2Tree(t, "memory")
	if _, err := m2.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(1)}}); !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "pids is not enabled") {
		t.Errorf("pids not enabled: err = %v", err)
	}
}

func TestCreateFake(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"cpuset/cpuset.cpus":              "0-3",
		"cpuset/cpuset.mems":              "0",
		"cpuset/berth/":                   "",
		"cpu,cpuacct/cpu.shares":          "1024",
		"v2/cgroup.controllers":           "cpu memory pids",
		"v2/cgroup.subtree_control":       "",
		"v2/berth/cgroup.controllers":     "cpu memory pids",
		"v2/berth/cgroup.subtree_control": "memory",
	})
	// A plain directory does not get control files from mkdir as cgroupfs does, so the
	// leaf is made here with empty ones, as the kernel makes them; Create must fill in both
	// levels from the nearest configured ancestor.
	writeTree(t, root, map[string]string{
		"cpuset/berth/cpuset.cpus": "", "cpuset/berth/cpuset.mems": "",
		"cpuset/berth/c/cpuset.cpus": "", "cpuset/berth/c/cpuset.mems": "",
	})
	m := Load(map[string]string{
		"cpuset":  filepath.Join(root, "cpuset/berth/c"),
		"cpu":     filepath.Join(root, "cpu,cpuacct/berth/c"),
		"cpuacct": filepath.Join(root, "cpu,cpuacct/berth/c"),
	})
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cpuset/berth/", "cpuset/berth/c/"} {
		if got := readTestFile(t, root, f+"cpuset.cpus"); got != "0-3" {
			t.Errorf("%scpuset.cpus = %q, want the parent's", f, got)
		}
		if got := readTestFile(t, root, f+"cpuset.mems"); got != "0" {
			t.Errorf("%scpuset.mems = %q, want the parent's", f, got)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "cpu,cpuacct/berth/c")); err != nil {
		t.Error(err)
	}

	// v2: every existing ancestor enables its controllers for the subtree.
	mv2 := Load(map[string]string{KeyV2: filepath.Join(root, "v2/berth/c")})
	if err := mv2.Create(); err != nil {
		t.Fatal(err)
	}
	if got := readTestFile(t, root, "v2/cgroup.subtree_control"); got != "+cpu +memory +pids" {
		t.Errorf("root subtree_control written %q", got)
	}
	if got := readTestFile(t, root, "v2/berth/cgroup.subtree_control"); got != "+cpu +pids" {
		t.Errorf("berth subtree_control written %q", got)
	}
}
