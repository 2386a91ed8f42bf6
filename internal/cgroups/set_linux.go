package cgroups

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Set applies linux.resources to the container's cgroup, for `create` and for `update`.
// Only what is set is written: a nil pointer or empty list leaves the kernel's current value.
//
// Everything that can be checked without the kernel (device rules, unified keys, hugepage
// sizes, memory+swap ordering) is checked before the first write, so a bad config changes
// nothing. After that, Set stops at the first failed write and returns it, naming the spec
// field and the file; the settings before it stay applied, as with any cgroupfs writer.
//
// The warnings are about deprecated settings that were ignored because this kernel or
// cgroup version does not offer them (memory.kernel, memory.kernelTCP, swappiness on v2,
// ...). The runtime logs them; they are not errors because the spec says the fields may be
// ignored.
func (m *Manager) Set(r *specs.LinuxResources) (warnings []string, err error) {
	if r == nil {
		return nil, nil
	}
	if err := validate(r); err != nil {
		return nil, err
	}
	steps := []func(*specs.LinuxResources) ([]string, error){
		m.setDevices,
		m.setMemory,
		m.setCPU,
		m.setPids,
		m.setBlockIO,
		m.setHugetlb,
		m.setNetwork,
		m.setRdma,
		// Last, so that an explicit unified value wins over one converted from v1 fields.
		m.setUnified,
	}
	for _, step := range steps {
		w, err := step(r)
		warnings = append(warnings, w...)
		if err != nil {
			return warnings, err
		}
	}
	return warnings, nil
}

// validate checks what can be checked without the kernel.
func validate(r *specs.LinuxResources) error {
	if _, err := deviceRules(r.Devices); err != nil {
		return err
	}
	if mem := r.Memory; mem != nil {
		if err := checkMemoryValues(mem); err != nil {
			return err
		}
	}
	for i, h := range r.HugepageLimits {
		if err := checkPageSize(h.Pagesize); err != nil {
			return fmt.Errorf("linux.resources.hugepageLimits[%d].pageSize: %w", i, err)
		}
	}
	for k := range r.Unified {
		if _, err := unifiedController(k); err != nil {
			return fmt.Errorf("linux.resources.unified[%q]: %w", k, err)
		}
	}
	if n := r.Network; n != nil {
		for i, p := range n.Priorities {
			if err := checkName(p.Name); err != nil {
				return fmt.Errorf("linux.resources.network.priorities[%d].name: %w", i, err)
			}
		}
	}
	for dev := range r.Rdma {
		if err := checkName(dev); err != nil {
			return fmt.Errorf("linux.resources.rdma[%q]: %w", dev, err)
		}
	}
	if b := r.BlockIO; b != nil {
		check := func(field string, d specs.LinuxBlockIODevice) error {
			if d.Major < 0 || d.Minor < 0 || d.Major > 0xfff || d.Minor > 0xfffff {
				return fmt.Errorf("%s: %w: device %d:%d out of range", field, ErrInvalid, d.Major, d.Minor)
			}
			return nil
		}
		for i, d := range b.WeightDevice {
			if err := check(fmt.Sprintf("linux.resources.blockIO.weightDevice[%d]", i), d.LinuxBlockIODevice); err != nil {
				return err
			}
		}
		for name, list := range throttleLists(b) {
			for i, d := range list {
				if err := check(fmt.Sprintf("linux.resources.blockIO.%s[%d]", name, i), d.LinuxBlockIODevice); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkName refuses names that would change the meaning of a line written to a cgroup file
// (interface names in net_prio.ifpriomap, device names in rdma.max are space-separated).
func checkName(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty name", ErrInvalid)
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: name %q contains white space or a control character", ErrInvalid, s)
		}
	}
	return nil
}

// unavailable says that a set field cannot be applied here.
func unavailable(field string, err error) error {
	return fmt.Errorf("%s: %w", field, err)
}
