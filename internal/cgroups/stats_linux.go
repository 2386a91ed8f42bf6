package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The types below serialise exactly like the "data" of `runc events --stats` (runc's
// types.Stats), so tools written against runc read berth's output unchanged. Field names and
// omitempty follow runc's, including its mixed spellings (ioQueueRecursive, kernelTCP).

// Stats is one sample of the container's cgroup statistics.
type Stats struct {
	CPU               CPU                 `json:"cpu"`
	CPUSet            CPUSet              `json:"cpuset"`
	Memory            Memory              `json:"memory"`
	Pids              Pids                `json:"pids"`
	Blkio             Blkio               `json:"blkio"`
	Hugetlb           map[string]Hugetlb  `json:"hugetlb"`
	IntelRdt          IntelRdt            `json:"intel_rdt"`
	NetworkInterfaces []*NetworkInterface `json:"network_interfaces"`
}

// PSIData is one line of a cgroup v2 *.pressure file.
type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"`
}

// PSIStats is a cgroup v2 *.pressure file.
type PSIStats struct {
	Some PSIData `json:"some,omitempty"`
	Full PSIData `json:"full,omitempty"`
}

// Hugetlb is the usage of one huge page size.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// BlkioEntry is one device line of a blkio statistics file.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio holds block I/O statistics, in v1's layout (v2's io.stat is mapped onto it).
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

// Pids counts tasks. A limit of 0 means none.
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// Throttling is CFS bandwidth throttling.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUUsage is CPU time in nanoseconds.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// CPU holds CPU usage and throttling.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// CPUSet is the cpuset configuration in force.
type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

// MemoryEntry is one memory counter. Limit math.MaxUint64 (or v1's page-rounded
// equivalent) means none.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory holds memory statistics. Swap is memory+swap, as v1 reports it (v2's values are
// added up to match).
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
}

// IntelRdt is filled by the runtime from resctrl, not by this package; it is here so the
// JSON has the same shape as runc's.
type IntelRdt struct {
	L3CacheSchemaRoot string `json:"l3_cache_schema_root,omitempty"`
	L3CacheSchema     string `json:"l3_cache_schema,omitempty"`
	MemBwSchemaRoot   string `json:"mem_bw_schema_root,omitempty"`
	MemBwSchema       string `json:"mem_bw_schema,omitempty"`
}

// NetworkInterface is filled by the runtime from the container's network namespace. runc
// gives these fields no JSON tags, so their Go names are the keys.
type NetworkInterface struct {
	Name      string
	RxBytes   uint64
	RxPackets uint64
	RxErrors  uint64
	RxDropped uint64
	TxBytes   uint64
	TxPackets uint64
	TxErrors  uint64
	TxDropped uint64
}

// Stats reads the statistics every available controller offers. A controller that is not
// there leaves its part zero; a file that exists but cannot be read or parsed is an error.
func (m *Manager) Stats() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	var errs []error
	add := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("stats %s: %w", what, err))
		}
	}
	if d, ok := m.paths[KeyV2]; ok {
		add("cpu", statCPUV2(d, s))
		add("cpuset", statCPUSet(d, s, true))
		add("memory", statMemoryV2(d, s))
		add("pids", statPids(d, s))
		add("io", statIOV2(d, s))
		add("hugetlb", statHugetlb(d, s, true))
		var err error
		s.CPU.PSI, err = readPSI(d, "cpu.pressure")
		add("cpu", err)
		s.Memory.PSI, err = readPSI(d, "memory.pressure")
		add("memory", err)
		s.Blkio.PSI, err = readPSI(d, "io.pressure")
		add("io", err)
		return s, errors.Join(errs...)
	}
	if d, ok := m.paths["cpuacct"]; ok {
		add("cpuacct", statCPUAcct(d, s))
	}
	if d, ok := m.paths["cpu"]; ok {
		add("cpu", statThrottlingV1(d, s))
	}
	if d, ok := m.paths["cpuset"]; ok {
		add("cpuset", statCPUSet(d, s, false))
	}
	if d, ok := m.paths["memory"]; ok {
		add("memory", statMemoryV1(d, s))
	}
	if d, ok := m.paths["pids"]; ok {
		add("pids", statPids(d, s))
	}
	if d, ok := m.paths["blkio"]; ok {
		add("blkio", statBlkioV1(d, s))
	}
	if d, ok := m.paths["hugetlb"]; ok {
		add("hugetlb", statHugetlb(d, s, false))
	}
	return s, errors.Join(errs...)
}

// OOMKillCount returns how many processes the kernel's OOM killer killed in the container's
// cgroup (and below it). v1 has the count in memory.oom_control since 4.13; v2 in
// memory.events.
func (m *Manager) OOMKillCount() (uint64, error) {
	dir, file := "", ""
	if d, ok := m.paths[KeyV2]; ok {
		dir, file = d, "memory.events"
	} else if d, ok := m.paths["memory"]; ok {
		dir, file = d, "memory.oom_control"
	} else {
		return 0, fmt.Errorf("oom kill count: %w: no memory hierarchy", ErrNotAvailable)
	}
	kv, err := readKeyValues(dir, file)
	if err != nil {
		return 0, fmt.Errorf("oom kill count: %w", err)
	}
	n, ok := kv["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("oom kill count: %w: no oom_kill in %s", ErrNotAvailable, filepath.Join(dir, file))
	}
	return n, nil
}

// readKeyValues parses "key value" lines (memory.stat, cpu.stat, memory.events, ...).
func readKeyValues(dir, file string) (map[string]uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return nil, err
	}
	return parseKeyValues(s, filepath.Join(dir, file))
}

func parseKeyValues(s, where string) (map[string]uint64, error) {
	out := make(map[string]uint64)
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("parse %s: %w: line %q", where, ErrInvalid, line)
		}
		v, err := parseUintOrMax(f[1], where)
		if err != nil {
			return nil, err
		}
		out[f[0]] = v
	}
	return out, nil
}

// optUint reads a number; a missing file reads as 0, since many counters depend on the
// kernel version and configuration.
func optUint(dir, file string) (uint64, error) {
	v, err := readUint(dir, file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return v, err
}

func optUints(dir, file string) ([]uint64, error) {
	s, err := readFile(dir, file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, file), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// userHZ is the unit of cpuacct.stat. The kernel exports USER_HZ as 100 on every
// architecture Linux containers run on.
const userHZ = 100

func statCPUAcct(dir string, s *Stats) error {
	u := &s.CPU.Usage
	var err error
	if u.Total, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	if u.Percpu, err = optUints(dir, "cpuacct.usage_percpu"); err != nil {
		return err
	}
	if u.PercpuKernel, err = optUints(dir, "cpuacct.usage_percpu_sys"); err != nil {
		return err
	}
	if u.PercpuUser, err = optUints(dir, "cpuacct.usage_percpu_user"); err != nil {
		return err
	}
	// Nanoseconds when the kernel has them (4.7+), else the tick counts of cpuacct.stat.
	if exists(dir, "cpuacct.usage_user") {
		if u.User, err = readUint(dir, "cpuacct.usage_user"); err != nil {
			return err
		}
		u.Kernel, err = readUint(dir, "cpuacct.usage_sys")
		return err
	}
	kv, err := readKeyValues(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	u.User = kv["user"] * (1e9 / userHZ)
	u.Kernel = kv["system"] * (1e9 / userHZ)
	return nil
}

func statThrottlingV1(dir string, s *Stats) error {
	kv, err := readKeyValues(dir, "cpu.stat")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	s.CPU.Throttling = Throttling{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_time"]}
	return nil
}

func statCPUV2(dir string, s *Stats) error {
	// cpu.stat is a core file (usage without the cpu controller, throttling with it).
	kv, err := readKeyValues(dir, "cpu.stat")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	s.CPU.Usage.Total = kv["usage_usec"] * 1000
	s.CPU.Usage.User = kv["user_usec"] * 1000
	s.CPU.Usage.Kernel = kv["system_usec"] * 1000
	s.CPU.Throttling = Throttling{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_usec"] * 1000}
	return nil
}

// parseCPUList parses the kernel's list format ("0-3,8,10-11").
func parseCPUList(s string) ([]uint16, error) {
	var out []uint16
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%w: cpu list %q", ErrInvalid, s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("%w: cpu list %q", ErrInvalid, s)
			}
		}
		if b-a > 1<<14 {
			return nil, fmt.Errorf("%w: cpu list %q: range too large", ErrInvalid, s)
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out, nil
}

func statCPUSet(dir string, s *Stats, v2 bool) error {
	cpusFile, memsFile := "cpuset.cpus", "cpuset.mems"
	if v2 {
		// The configured files are empty unless set; the effective ones say what is used.
		cpusFile, memsFile = "cpuset.cpus.effective", "cpuset.mems.effective"
	}
	for _, f := range []struct {
		file string
		dst  *[]uint16
	}{{cpusFile, &s.CPUSet.CPUs}, {memsFile, &s.CPUSet.Mems}} {
		v, err := readFile(dir, f.file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if *f.dst, err = parseCPUList(v); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, f.file), err)
		}
	}
	if v2 {
		return nil
	}
	for _, f := range []struct {
		file string
		dst  *uint64
	}{
		{"cpuset.cpu_exclusive", &s.CPUSet.CPUExclusive},
		{"cpuset.mem_hardwall", &s.CPUSet.MemHardwall},
		{"cpuset.mem_exclusive", &s.CPUSet.MemExclusive},
		{"cpuset.memory_migrate", &s.CPUSet.MemoryMigrate},
		{"cpuset.memory_spread_page", &s.CPUSet.MemorySpreadPage},
		{"cpuset.memory_spread_slab", &s.CPUSet.MemorySpreadSlab},
		{"cpuset.memory_pressure", &s.CPUSet.MemoryPressure},
		{"cpuset.sched_load_balance", &s.CPUSet.SchedLoadBalance},
	} {
		v, err := optUint(dir, f.file)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	if v, err := readFile(dir, "cpuset.sched_relax_domain_level"); err == nil {
		if s.CPUSet.SchedRelaxDomainLevel, err = strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("parse cpuset.sched_relax_domain_level: %w", err)
		}
	}
	return nil
}

func memoryEntryV1(dir, prefix string) (MemoryEntry, error) {
	var e MemoryEntry
	if !exists(dir, prefix+"usage_in_bytes") {
		return e, nil // no swap accounting, or no kmem files on this kernel
	}
	for _, f := range []struct {
		file string
		dst  *uint64
	}{{"usage_in_bytes", &e.Usage}, {"max_usage_in_bytes", &e.Max}, {"failcnt", &e.Failcnt}, {"limit_in_bytes", &e.Limit}} {
		v, err := optUint(dir, prefix+f.file)
		if err != nil {
			return e, err
		}
		*f.dst = v
	}
	return e, nil
}

func statMemoryV1(dir string, s *Stats) error {
	raw, err := readKeyValues(dir, "memory.stat")
	if err != nil {
		return err
	}
	s.Memory.Raw = raw
	s.Memory.Cache = raw["cache"]
	for _, e := range []struct {
		prefix string
		dst    *MemoryEntry
	}{{"memory.", &s.Memory.Usage}, {"memory.memsw.", &s.Memory.Swap}, {"memory.kmem.", &s.Memory.Kernel}, {"memory.kmem.tcp.", &s.Memory.KernelTCP}} {
		if *e.dst, err = memoryEntryV1(dir, e.prefix); err != nil {
			return err
		}
	}
	return nil
}

func statMemoryV2(dir string, s *Stats) error {
	raw, err := readKeyValues(dir, "memory.stat")
	if errors.Is(err, fs.ErrNotExist) {
		return nil // memory controller not enabled for this cgroup
	}
	if err != nil {
		return err
	}
	s.Memory.Raw = raw
	s.Memory.Cache = raw["file"]
	u := &s.Memory.Usage
	if u.Usage, err = readUint(dir, "memory.current"); err != nil {
		return err
	}
	if u.Limit, err = readUint(dir, "memory.max"); err != nil {
		return err
	}
	if u.Max, err = optUint(dir, "memory.peak"); err != nil { // 5.19+
		return err
	}
	if ev, err := readKeyValues(dir, "memory.events"); err == nil {
		u.Failcnt = ev["max"]
	}
	if exists(dir, "memory.swap.current") {
		sw := &s.Memory.Swap
		if sw.Usage, err = readUint(dir, "memory.swap.current"); err != nil {
			return err
		}
		if sw.Limit, err = readUint(dir, "memory.swap.max"); err != nil {
			return err
		}
		// v1 reports memory+swap; do the same so consumers see one meaning.
		sw.Usage += u.Usage
		if sw.Limit != math.MaxUint64 && u.Limit != math.MaxUint64 {
			sw.Limit += u.Limit
		} else {
			sw.Limit = math.MaxUint64
		}
	}
	return nil
}

func statPids(dir string, s *Stats) error {
	var err error
	if s.Pids.Current, err = readUint(dir, "pids.current"); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if s.Pids.Limit, err = readUint(dir, "pids.max"); err != nil {
		return err
	}
	if s.Pids.Limit == math.MaxUint64 {
		s.Pids.Limit = 0 // "max": no limit, shown as absent as runc does
	}
	return nil
}

// parseBlkioV1 parses "MAJ:MIN Op value" lines (or "MAJ:MIN value" for files without an
// operation). Summary lines ("Total N") name no device and are skipped.
func parseBlkioV1(s, where string) ([]BlkioEntry, error) {
	var out []BlkioEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[0], ":") {
			continue
		}
		majS, minS, _ := strings.Cut(f[0], ":")
		maj, err1 := strconv.ParseUint(majS, 10, 64)
		mnr, err2 := strconv.ParseUint(minS, 10, 64)
		if err1 != nil || err2 != nil || len(f) > 3 {
			return nil, fmt.Errorf("parse %s: %w: line %q", where, ErrInvalid, line)
		}
		e := BlkioEntry{Major: maj, Minor: mnr}
		vs := f[1]
		if len(f) == 3 {
			e.Op, vs = f[1], f[2]
		}
		v, err := strconv.ParseUint(vs, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w: line %q", where, ErrInvalid, line)
		}
		e.Value = v
		out = append(out, e)
	}
	return out, nil
}

func statBlkioV1(dir string, s *Stats) error {
	read := func(file string, dst *[]BlkioEntry) error {
		v, err := readFile(dir, file)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		*dst, err = parseBlkioV1(v, filepath.Join(dir, file))
		return err
	}
	b := &s.Blkio
	// The scheduler's own statistics (CFQ's, then BFQ's) are the detailed ones. They only
	// count devices that scheduler drives, so when they are empty, fall back to the
	// throttle layer's, which sees every device.
	for _, prefix := range []string{"blkio.", "blkio.bfq."} {
		if !exists(dir, prefix+"io_service_bytes_recursive") {
			continue
		}
		for _, f := range []struct {
			file string
			dst  *[]BlkioEntry
		}{
			{"io_service_bytes_recursive", &b.IoServiceBytesRecursive},
			{"io_serviced_recursive", &b.IoServicedRecursive},
			{"io_queued_recursive", &b.IoQueuedRecursive},
			{"io_service_time_recursive", &b.IoServiceTimeRecursive},
			{"io_wait_time_recursive", &b.IoWaitTimeRecursive},
			{"io_merged_recursive", &b.IoMergedRecursive},
			{"time_recursive", &b.IoTimeRecursive},
			{"sectors_recursive", &b.SectorsRecursive},
		} {
			if err := read(prefix+f.file, f.dst); err != nil {
				return err
			}
		}
		if len(b.IoServiceBytesRecursive) > 0 || len(b.IoServicedRecursive) > 0 {
			return nil
		}
	}
	*b = Blkio{}
	if err := read("blkio.throttle.io_service_bytes_recursive", &b.IoServiceBytesRecursive); err != nil {
		return err
	}
	return read("blkio.throttle.io_serviced_recursive", &b.IoServicedRecursive)
}

func statIOV2(dir string, s *Stats) error {
	v, err := readFile(dir, "io.stat")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(v, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		majS, minS, ok := strings.Cut(f[0], ":")
		maj, err1 := strconv.ParseUint(majS, 10, 64)
		mnr, err2 := strconv.ParseUint(minS, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("parse %s: %w: line %q", filepath.Join(dir, "io.stat"), ErrInvalid, line)
		}
		for _, kv := range f[1:] {
			k, vs, _ := strings.Cut(kv, "=")
			var dst *[]BlkioEntry
			op := "Read"
			switch k {
			case "rbytes":
				dst = &s.Blkio.IoServiceBytesRecursive
			case "wbytes":
				dst, op = &s.Blkio.IoServiceBytesRecursive, "Write"
			case "rios":
				dst = &s.Blkio.IoServicedRecursive
			case "wios":
				dst, op = &s.Blkio.IoServicedRecursive, "Write"
			default:
				continue // discards and cost model data have no v1 counterpart
			}
			n, err := strconv.ParseUint(vs, 10, 64)
			if err != nil {
				return fmt.Errorf("parse %s: %w: %q", filepath.Join(dir, "io.stat"), ErrInvalid, kv)
			}
			*dst = append(*dst, BlkioEntry{Major: maj, Minor: mnr, Op: op, Value: n})
		}
	}
	return nil
}

// hugePageSizes lists the page sizes the hugetlb controller offers in dir, from its files.
func hugePageSizes(dir, suffix string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, "hugetlb.*."+suffix))
	var out []string
	for _, p := range matches {
		f := strings.TrimPrefix(filepath.Base(p), "hugetlb.")
		if size, rest, _ := strings.Cut(f, "."); rest == suffix {
			out = append(out, size)
		}
	}
	return out
}

func statHugetlb(dir string, s *Stats, v2 bool) error {
	if !v2 {
		for _, size := range hugePageSizes(dir, "usage_in_bytes") {
			var h Hugetlb
			var err error
			p := "hugetlb." + size + "."
			if h.Usage, err = readUint(dir, p+"usage_in_bytes"); err != nil {
				return err
			}
			if h.Max, err = optUint(dir, p+"max_usage_in_bytes"); err != nil {
				return err
			}
			if h.Failcnt, err = optUint(dir, p+"failcnt"); err != nil {
				return err
			}
			s.Hugetlb[size] = h
		}
		return nil
	}
	for _, size := range hugePageSizes(dir, "current") {
		var h Hugetlb
		var err error
		p := "hugetlb." + size + "."
		if h.Usage, err = readUint(dir, p+"current"); err != nil {
			return err
		}
		if ev, err := readKeyValues(dir, p+"events"); err == nil {
			h.Failcnt = ev["max"]
		}
		s.Hugetlb[size] = h
	}
	return nil
}

// readPSI parses a *.pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0"). A
// missing file (PSI disabled) gives nil.
func readPSI(dir, file string) (*PSIStats, error) {
	v, err := readFile(dir, file)
	// PSI can be compiled in but disabled (psi=0): reading then fails with EOPNOTSUPP.
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ps PSIStats
	for _, line := range strings.Split(v, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var d *PSIData
		switch f[0] {
		case "some":
			d = &ps.Some
		case "full":
			d = &ps.Full
		default:
			continue
		}
		for _, kv := range f[1:] {
			k, vs, _ := strings.Cut(kv, "=")
			var perr error
			switch k {
			case "avg10":
				d.Avg10, perr = strconv.ParseFloat(vs, 64)
			case "avg60":
				d.Avg60, perr = strconv.ParseFloat(vs, 64)
			case "avg300":
				d.Avg300, perr = strconv.ParseFloat(vs, 64)
			case "total":
				d.Total, perr = strconv.ParseUint(vs, 10, 64)
			}
			if perr != nil {
				return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, file), perr)
			}
		}
	}
	return &ps, nil
}
