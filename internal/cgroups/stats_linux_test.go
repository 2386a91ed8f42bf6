package cgroups

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestStatsV1Fake(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"cpuacct/c/cpuacct.usage":                           "3000",
		"cpuacct/c/cpuacct.usage_percpu":                    "1000 2000 ",
		"cpuacct/c/cpuacct.usage_percpu_sys":                "100 200",
		"cpuacct/c/cpuacct.usage_percpu_user":               "900 1800",
		"cpuacct/c/cpuacct.usage_user":                      "2700",
		"cpuacct/c/cpuacct.usage_sys":                       "300",
		"cpu/c/cpu.stat":                                    "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\nnr_bursts 0\n",
		"cpuset/c/cpuset.cpus":                              "0-2,5",
		"cpuset/c/cpuset.mems":                              "0",
		"cpuset/c/cpuset.sched_load_balance":                "1",
		"cpuset/c/cpuset.sched_relax_domain_level":          "-1",
		"memory/c/memory.stat":                              "cache 4096\nrss 8192\ntotal_cache 4096\n",
		"memory/c/memory.usage_in_bytes":                    "12288",
		"memory/c/memory.max_usage_in_bytes":                "20000",
		"memory/c/memory.failcnt":                           "1",
		"memory/c/memory.limit_in_bytes":                    "67108864",
		"memory/c/memory.memsw.usage_in_bytes":              "12288",
		"memory/c/memory.memsw.limit_in_bytes":              "134217728",
		"memory/c/memory.oom_control":                       "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"pids/c/pids.current":                               "3",
		"pids/c/pids.max":                                   "max",
		"blkio/c/blkio.bfq.io_service_bytes_recursive":      "Total 0\n",
		"blkio/c/blkio.bfq.io_serviced_recursive":           "Total 0\n",
		"blkio/c/blkio.throttle.io_service_bytes_recursive": "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\nTotal 12288\n",
		"blkio/c/blkio.throttle.io_serviced_recursive":      "254:0 Read 1\n254:0 Write 2\nTotal 3\n",
		"hugetlb/c/hugetlb.2MB.usage_in_bytes":              "2097152",
		"hugetlb/c/hugetlb.2MB.max_usage_in_bytes":          "4194304",
		"hugetlb/c/hugetlb.2MB.failcnt":                     "0",
		"hugetlb/c/hugetlb.2MB.rsvd.usage_in_bytes":         "0",
	})
	paths := map[string]string{}
	for _, c := range []string{"cpuacct", "cpu", "cpuset", "memory", "pids", "blkio", "hugetlb"} {
		paths[c] = filepath.Join(root, c, "c")
	}
	m := Load(paths)
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := CPU{
		Usage:      CPUUsage{Total: 3000, Percpu: []uint64{1000, 2000}, PercpuKernel: []uint64{100, 200}, PercpuUser: []uint64{900, 1800}, Kernel: 300, User: 2700},
		Throttling: Throttling{Periods: 10, ThrottledPeriods: 2, ThrottledTime: 5000},
	}
	if !reflect.DeepEqual(s.CPU, want) {
		t.Errorf("CPU = %+v\nwant %+v", s.CPU, want)
	}
	if !slices.Equal(s.CPUSet.CPUs, []uint16{0, 1, 2, 5}) || s.CPUSet.SchedRelaxDomainLevel != -1 || s.CPUSet.SchedLoadBalance != 1 {
		t.Errorf("CPUSet = %+v", s.CPUSet)
	}
	if s.Memory.Cache != 4096 || s.Memory.Usage != (MemoryEntry{Limit: 67108864, Usage: 12288, Max: 20000, Failcnt: 1}) ||
		s.Memory.Swap.Limit != 134217728 || s.Memory.Raw["rss"] != 8192 {
		t.Errorf("Memory = %+v", s.Memory)
	}
	if s.Pids != (Pids{Current: 3}) {
		t.Errorf("Pids = %+v", s.Pids)
	}
	// BFQ's statistics are empty (the device uses another scheduler): the throttle ones are
	// reported.
	if want := []BlkioEntry{{254, 0, "Read", 4096}, {254, 0, "Write", 8192}, {254, 0, "Sync", 0}}; !slices.Equal(s.Blkio.IoServiceBytesRecursive, want) {
		t.Errorf("IoServiceBytesRecursive = %+v", s.Blkio.IoServiceBytesRecursive)
	}
	if s.Hugetlb["2MB"] != (Hugetlb{Usage: 2097152, Max: 4194304}) || len(s.Hugetlb) != 1 {
		t.Errorf("Hugetlb = %+v", s.Hugetlb)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 2 {
		t.Errorf("OOMKillCount() = %d, %v", n, err)
	}

	// The JSON keys are runc's.
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		`"cpu":{"usage":{"total":3000,"percpu":[1000,2000],"percpu_kernel":[100,200],"percpu_user":[900,1800],"kernel":300,"user":2700},"throttling":{"periods":10,"throttledPeriods":2,"throttledTime":5000}}`,
		`"cpuset":{"cpus":[0,1,2,5],"cpu_exclusive":0,"mems":[0]`,
		`"memory":{"cache":4096,"usage":{"limit":67108864,"usage":12288,"max":20000,"failcnt":1},"swap":{`,
		`"kernelTCP":{"limit":0,"failcnt":0}`,
		`"pids":{"current":3}`,
		`"blkio":{"ioServiceBytesRecursive":[{"major":254,"op":"Read","value":4096}`,
		`"hugetlb":{"2MB":{"usage":2097152,"max":4194304,"failcnt":0}}`,
		`"intel_rdt":{}`,
		`"network_interfaces":null`,
	} {
		if !strings.Contains(string(js), key) {
			t.Errorf("JSON lacks %s\n%s", key, js)
		}
	}
}

func TestStatsV2Fake(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"c/cpu.stat":              "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 3\n",
		"c/cpuset.cpus.effective": "0-1",
		"c/cpuset.mems.effective": "0",
		"c/memory.stat":           "anon 100\nfile 200\n",
		"c/memory.current":        "300",
		"c/memory.max":            "1000",
		"c/memory.peak":           "400",
		"c/memory.events":         "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
		"c/memory.swap.current":   "50",
		"c/memory.swap.max":       "max",
		"c/pids.current":          "2",
		"c/pids.max":              "10",
		"c/io.stat":               "254:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
		"c/hugetlb.2MB.current":   "0",
		"c/hugetlb.2MB.events":    "max 3\n",
		"c/cpu.pressure":          "some avg10=0.50 avg60=0.00 avg300=0.00 total=123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=4\n",
	})
	m := Load(map[string]string{KeyV2: filepath.Join(root, "c")})
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU.Usage.Total != 7000 || s.CPU.Usage.User != 5000 || s.CPU.Throttling.ThrottledTime != 3000 {
		t.Errorf("CPU = %+v", s.CPU)
	}
	if s.CPU.PSI == nil || s.CPU.PSI.Some.Avg10 != 0.5 || s.CPU.PSI.Full.Total != 4 || s.Memory.PSI != nil {
		t.Errorf("PSI cpu %+v memory %+v", s.CPU.PSI, s.Memory.PSI)
	}
	if s.Memory.Cache != 200 || s.Memory.Usage != (MemoryEntry{Limit: 1000, Usage: 300, Max: 400, Failcnt: 5}) {
		t.Errorf("Memory = %+v", s.Memory)
	}
	if s.Memory.Swap.Usage != 350 || s.Memory.Swap.Limit != math.MaxUint64 {
		t.Errorf("Swap = %+v (want memory+swap, as v1 reports it)", s.Memory.Swap)
	}
	if s.Pids != (Pids{Current: 2, Limit: 10}) || !slices.Equal(s.CPUSet.CPUs, []uint16{0, 1}) {
		t.Errorf("Pids = %+v, CPUSet = %+v", s.Pids, s.CPUSet)
	}
	if want := []BlkioEntry{{254, 0, "Read", 4096}, {254, 0, "Write", 0}}; !slices.Equal(s.Blkio.IoServiceBytesRecursive, want) {
		t.Errorf("Blkio = %+v", s.Blkio)
	}
	if s.Hugetlb["2MB"] != (Hugetlb{Failcnt: 3}) {
		t.Errorf("Hugetlb = %+v", s.Hugetlb)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 1 {
		t.Errorf("OOMKillCount() = %d, %v", n, err)
	}
	if _, err := Load(map[string]string{"cpu": root}).OOMKillCount(); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("OOMKillCount without memory: %v", err)
	}
}

func TestParseCPUList(t *testing.T) {
	t.Parallel()
	got, err := parseCPUList("0-3,8,10-11\n")
	if err != nil || !slices.Equal(got, []uint16{0, 1, 2, 3, 8, 10, 11}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"3-1", "a", "1,,2", "-1", "0-"} {
		if _, err := parseCPUList(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}
