package cgroups

import (
	"fmt"
	"iter"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// This file holds the controllers whose settings map one-to-one to files: pids, blkio/io,
// hugetlb, net_cls/net_prio, rdma and the unified map.

func (m *Manager) setPids(r *specs.LinuxResources) ([]string, error) {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil, nil
	}
	t, err := m.controller("pids")
	if err != nil {
		return nil, unavailable("linux.resources.pids.limit", err)
	}
	// runtime-spec 1.3: -1 means no limit, and 0 is a real limit ("no new tasks") that
	// runtimes SHOULD apply; older runtimes read 0 as "no limit" only because the field
	// was not a pointer. Any negative value is read as "no limit".
	v := "max"
	if *r.Pids.Limit >= 0 {
		v = strconv.FormatInt(*r.Pids.Limit, 10)
	}
	return nil, set("linux.resources.pids.limit", t.dir, "pids.max", v)
}

type throttle struct {
	name   string // spec field below linux.resources.blockIO
	v1File string
	v2Key  string // key in io.max
	list   []specs.LinuxThrottleDevice
}

func throttleLists(b *specs.LinuxBlockIO) iter.Seq2[string, []specs.LinuxThrottleDevice] {
	return func(yield func(string, []specs.LinuxThrottleDevice) bool) {
		for _, t := range throttles(b) {
			if !yield(t.name, t.list) {
				return
			}
		}
	}
}

func throttles(b *specs.LinuxBlockIO) []throttle {
	return []throttle{
		{"throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps", b.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps", b.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops", b.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops", b.ThrottleWriteIOPSDevice},
	}
}

// blkioWeightToIOWeight converts the blkio weight range [10, 1000] linearly to io.weight's
// [1, 10000], as runc and crun do. io.bfq.weight uses the blkio range and needs no
// conversion.
func blkioWeightToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	v := uint64(min(max(w, 10), 1000))
	return 1 + (v-10)*9999/990
}

func (m *Manager) setBlockIO(r *specs.LinuxResources) ([]string, error) {
	b := r.BlockIO
	if b == nil {
		return nil, nil
	}
	empty := b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0
	for _, l := range throttleLists(b) {
		empty = empty && len(l) == 0
	}
	if empty {
		return nil, nil
	}
	// The v1 controller is "blkio", its v2 successor "io".
	t := target{dir: m.paths["blkio"]}
	var err error
	if t.dir == "" {
		t, err = m.controller("io")
	}
	if err != nil {
		return nil, unavailable("linux.resources.blockIO", err)
	}
	if t.v2 {
		return nil, setIOV2(t.dir, b)
	}
	return nil, setBlkioV1(t.dir, b)
}

// firstExisting returns the first of files that exists in dir. The weight knobs depend on
// the I/O scheduler: CFQ (gone since 5.0) had blkio.weight and the leaf weights, BFQ has
// blkio.bfq.weight. When none exists the setting cannot be applied and that is an error.
func firstExisting(field, dir string, files ...string) (string, error) {
	for _, f := range files {
		if exists(dir, f) {
			return f, nil
		}
	}
	return "", fmt.Errorf("%s: %w: none of %s exists in %s (no CFQ or BFQ I/O scheduler support)", field, ErrNotAvailable, strings.Join(files, ", "), dir)
}

func devNum(d specs.LinuxBlockIODevice) string {
	return strconv.FormatInt(d.Major, 10) + ":" + strconv.FormatInt(d.Minor, 10)
}

func setBlkioV1(dir string, b *specs.LinuxBlockIO) error {
	if b.Weight != nil {
		const field = "linux.resources.blockIO.weight"
		f, err := firstExisting(field, dir, "blkio.weight", "blkio.bfq.weight")
		if err != nil {
			return err
		}
		if err := set(field, dir, f, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil {
		const field = "linux.resources.blockIO.leafWeight"
		f, err := firstExisting(field, dir, "blkio.leaf_weight")
		if err != nil {
			return err
		}
		if err := set(field, dir, f, strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for i, d := range b.WeightDevice {
		if d.Weight != nil {
			field := fmt.Sprintf("linux.resources.blockIO.weightDevice[%d].weight", i)
			f, err := firstExisting(field, dir, "blkio.weight_device", "blkio.bfq.weight_device")
			if err != nil {
				return err
			}
			if err := set(field, dir, f, devNum(d.LinuxBlockIODevice)+" "+strconv.FormatUint(uint64(*d.Weight), 10)); err != nil {
				return err
			}
		}
		if d.LeafWeight != nil {
			field := fmt.Sprintf("linux.resources.blockIO.weightDevice[%d].leafWeight", i)
			f, err := firstExisting(field, dir, "blkio.leaf_weight_device")
			if err != nil {
				return err
			}
			if err := set(field, dir, f, devNum(d.LinuxBlockIODevice)+" "+strconv.FormatUint(uint64(*d.LeafWeight), 10)); err != nil {
				return err
			}
		}
	}
	for _, t := range throttles(b) {
		for i, d := range t.list {
			field := fmt.Sprintf("linux.resources.blockIO.%s[%d]", t.name, i)
			// Rate 0 removes the device's limit, in the kernel's v1 interface as in the spec.
			if err := set(field, dir, t.v1File, devNum(d.LinuxBlockIODevice)+" "+strconv.FormatUint(d.Rate, 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

func setIOV2(dir string, b *specs.LinuxBlockIO) error {
	// With BFQ, io.bfq.weight takes the blkio range directly; otherwise io.weight (the
	// io.cost / io.prio "weight" knob) takes the converted value.
	bfq := exists(dir, "io.bfq.weight")
	weight := func(field, prefix string, w uint16) error {
		if bfq {
			return set(field, dir, "io.bfq.weight", prefix+strconv.FormatUint(uint64(w), 10))
		}
		return set(field, dir, "io.weight", prefix+strconv.FormatUint(blkioWeightToIOWeight(w), 10))
	}
	if b.Weight != nil {
		if err := weight("linux.resources.blockIO.weight", "default ", *b.Weight); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil {
		return fmt.Errorf("linux.resources.blockIO.leafWeight: %w: cgroup v2 has no leaf weight", ErrNotAvailable)
	}
	for i, d := range b.WeightDevice {
		if d.LeafWeight != nil {
			return fmt.Errorf("linux.resources.blockIO.weightDevice[%d].leafWeight: %w: cgroup v2 has no leaf weight", i, ErrNotAvailable)
		}
		if d.Weight != nil {
			if err := weight(fmt.Sprintf("linux.resources.blockIO.weightDevice[%d].weight", i), devNum(d.LinuxBlockIODevice)+" ", *d.Weight); err != nil {
				return err
			}
		}
	}
	for _, t := range throttles(b) {
		for i, d := range t.list {
			field := fmt.Sprintf("linux.resources.blockIO.%s[%d]", t.name, i)
			v := "max"
			if d.Rate != 0 {
				v = strconv.FormatUint(d.Rate, 10)
			}
			if err := set(field, dir, "io.max", devNum(d.LinuxBlockIODevice)+" "+t.v2Key+"="+v); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPageSize accepts the spec's "<size><unit>B" form (64KB, 2MB, 1GB), which is also the
// form of the kernel's hugetlb file names. It keeps the string from naming another file.
func checkPageSize(s string) error {
	num, ok := strings.CutSuffix(s, "B")
	if ok && len(num) >= 2 && strings.ContainsRune("KMG", rune(num[len(num)-1])) {
		num = num[:len(num)-1]
		if n, err := strconv.ParseUint(num, 10, 32); err == nil && n > 0 && num[0] != '0' {
			return nil
		}
	}
	return fmt.Errorf("%w: page size %q is not of the form 2MB, 1GB, 64KB", ErrInvalid, s)
}

func (m *Manager) setHugetlb(r *specs.LinuxResources) ([]string, error) {
	if len(r.HugepageLimits) == 0 {
		return nil, nil
	}
	t, err := m.controller("hugetlb")
	if err != nil {
		return nil, unavailable("linux.resources.hugepageLimits", err)
	}
	limitFile, rsvdFile := "hugetlb.%s.limit_in_bytes", "hugetlb.%s.rsvd.limit_in_bytes"
	if t.v2 {
		limitFile, rsvdFile = "hugetlb.%s.max", "hugetlb.%s.rsvd.max"
	}
	for i, h := range r.HugepageLimits {
		field := fmt.Sprintf("linux.resources.hugepageLimits[%d]", i)
		lf := fmt.Sprintf(limitFile, h.Pagesize)
		if !exists(t.dir, lf) {
			// The kernel offers one set of files per page size it supports.
			matches, _ := filepath.Glob(filepath.Join(t.dir, fmt.Sprintf(limitFile, "*")))
			var sizes []string
			for _, p := range matches {
				f := filepath.Base(p)
				if sz := strings.Split(f, ".")[1]; !slices.Contains(sizes, sz) && !strings.Contains(f, ".rsvd.") {
					sizes = append(sizes, sz)
				}
			}
			return nil, fmt.Errorf("%s.pageSize: %w: page size %q is not offered by this kernel (offered: %s)", field, ErrNotAvailable, h.Pagesize, strings.Join(sizes, ", "))
		}
		v := strconv.FormatUint(h.Limit, 10)
		if err := set(field+".limit", t.dir, lf, v); err != nil {
			return nil, err
		}
		// The spec asks for reservation limits where the kernel has them (5.7+): they
		// fail at mmap time instead of with SIGBUS at fault time. The usage limit is set
		// too, so the two agree.
		if rf := fmt.Sprintf(rsvdFile, h.Pagesize); exists(t.dir, rf) {
			if err := set(field+".limit", t.dir, rf, v); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

func (m *Manager) setNetwork(r *specs.LinuxResources) ([]string, error) {
	n := r.Network
	if n == nil {
		return nil, nil
	}
	notHere := func(field, ctrl string) error {
		if m.IsV2() {
			return fmt.Errorf("%s: %w: %s is a cgroup v1 controller; cgroup v2 has no equivalent (use an eBPF program or the network plugin)", field, ErrNotAvailable, ctrl)
		}
		return fmt.Errorf("%s: %w: no %s hierarchy is mounted", field, ErrNotAvailable, ctrl)
	}
	if n.ClassID != nil {
		const field = "linux.resources.network.classID"
		dir, ok := m.paths["net_cls"]
		if !ok {
			return nil, notHere(field, "net_cls")
		}
		if err := set(field, dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return nil, err
		}
	}
	for i, p := range n.Priorities {
		field := fmt.Sprintf("linux.resources.network.priorities[%d]", i)
		dir, ok := m.paths["net_prio"]
		if !ok {
			return nil, notHere(field, "net_prio")
		}
		// One interface per write: the kernel parses a single "name prio" per write.
		if err := set(field, dir, "net_prio.ifpriomap", p.Name+" "+strconv.FormatUint(uint64(p.Priority), 10)); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (m *Manager) setRdma(r *specs.LinuxResources) ([]string, error) {
	if len(r.Rdma) == 0 {
		return nil, nil
	}
	t, err := m.controller("rdma")
	if err != nil {
		return nil, unavailable("linux.resources.rdma", err)
	}
	for _, dev := range slices.Sorted(maps.Keys(r.Rdma)) {
		l := r.Rdma[dev]
		v := dev
		if l.HcaHandles != nil {
			v += " hca_handle=" + strconv.FormatUint(uint64(*l.HcaHandles), 10)
		}
		if l.HcaObjects != nil {
			v += " hca_object=" + strconv.FormatUint(uint64(*l.HcaObjects), 10)
		}
		if v == dev {
			continue
		}
		if err := set(fmt.Sprintf("linux.resources.rdma[%q]", dev), t.dir, "rdma.max", v); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// unifiedController validates a key of linux.resources.unified and returns the controller
// it belongs to ("cgroup" for the core files). A key names a file in the container's
// cgroup2 directory, so anything that could name another file is refused: separators,
// "." and "..", NUL, white space. The file name must be "<controller>.<knob>".
func unifiedController(key string) (string, error) {
	if key == "" || key == "." || key == ".." || strings.ContainsAny(key, "/\\\x00") || strings.Contains(key, "..") {
		return "", fmt.Errorf("%w: %q is not a file name in the cgroup directory", ErrInvalid, key)
	}
	for _, c := range key {
		if c <= ' ' || c == 0x7f {
			return "", fmt.Errorf("%w: %q contains white space or a control character", ErrInvalid, key)
		}
	}
	ctrl, knob, ok := strings.Cut(key, ".")
	if !ok || ctrl == "" || knob == "" {
		return "", fmt.Errorf("%w: %q is not of the form <controller>.<file>", ErrInvalid, key)
	}
	return ctrl, nil
}

func (m *Manager) setUnified(r *specs.LinuxResources) ([]string, error) {
	if len(r.Unified) == 0 {
		return nil, nil
	}
	dir, ok := m.v2Dir()
	if !ok {
		return nil, fmt.Errorf("linux.resources.unified: %w: no cgroup2 hierarchy is mounted (cgroup v1 only host)", ErrNotAvailable)
	}
	var enabled []string
	for _, k := range slices.Sorted(maps.Keys(r.Unified)) {
		field := fmt.Sprintf("linux.resources.unified[%q]", k)
		ctrl, err := unifiedController(k)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if ctrl != "cgroup" {
			if enabled == nil {
				if enabled, err = v2Controllers(dir); err != nil {
					return nil, fieldErr(field, err)
				}
			}
			if !slices.Contains(enabled, ctrl) {
				return nil, fmt.Errorf("%s: %w: controller %q is not enabled for %s (enabled: %q)", field, ErrNotAvailable, ctrl, dir, strings.Join(enabled, " "))
			}
		}
		if err := set(field, dir, k, r.Unified[k]); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
