package cgroups

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	fMemLimit      = "linux.resources.memory.limit"
	fMemSwap       = "linux.resources.memory.swap"
	fMemReserve    = "linux.resources.memory.reservation"
	fMemKernel     = "linux.resources.memory.kernel"
	fMemKernelTCP  = "linux.resources.memory.kernelTCP"
	fMemSwappiness = "linux.resources.memory.swappiness"
	fMemOOM        = "linux.resources.memory.disableOOMKiller"
	fMemHierarchy  = "linux.resources.memory.useHierarchy"
)

// fileWrite is one planned write, kept as data so the order can be tested without a kernel.
type fileWrite struct {
	field, file, value string
}

// swapOf returns memory.swap, treating 0 as unset: no kernel accepts a memory+swap limit of
// 0 below a memory limit, and configs written for runc use 0 to mean "not set".
func swapOf(mem *specs.LinuxMemory) *int64 {
	if mem.Swap == nil || *mem.Swap == 0 {
		return nil
	}
	return mem.Swap
}

// kernelLimit reads the deprecated memory.kernel field, which Set must still honour or warn
// about: configs written for older runtimes set it.
func kernelLimit(mem *specs.LinuxMemory) *int64 {
	//lint:ignore SA1019 reading the deprecated field is how Set reports it as ignored.
	return mem.Kernel
}

func checkMemoryValues(mem *specs.LinuxMemory) error {
	for _, v := range []struct {
		field string
		p     *int64
	}{{fMemLimit, mem.Limit}, {fMemReserve, mem.Reservation}, {fMemSwap, mem.Swap}, {fMemKernel, kernelLimit(mem)}, {fMemKernelTCP, mem.KernelTCP}} {
		if v.p != nil && *v.p < -1 {
			return fmt.Errorf("%s: %w: %d (use -1 for no limit)", v.field, ErrInvalid, *v.p)
		}
	}
	if swap := swapOf(mem); swap != nil && mem.Limit != nil && *swap != -1 && *mem.Limit != -1 && *swap < *mem.Limit {
		return fmt.Errorf("%s: %w: memory+swap limit %d is below the memory limit %d", fMemSwap, ErrInvalid, *swap, *mem.Limit)
	}
	return nil
}

// asLimit maps -1 ("no limit") above every real limit, for comparisons.
func asLimit(v int64) uint64 {
	if v < 0 {
		return math.MaxUint64
	}
	return uint64(v)
}

// planMemoryV1 orders the writes of memory.limit_in_bytes and memory.memsw.limit_in_bytes.
// The kernel keeps limit <= memsw at every moment and refuses a write that would break it,
// so: when the new memsw is at least the current limit, memsw goes first (then the new limit
// fits under it); otherwise the limit is being lowered below the new memsw's level and goes
// first. curLimit is the current memory.limit_in_bytes. Without swap accounting
// (hasMemsw false) a memsw value other than "no limit" cannot be applied.
func planMemoryV1(mem *specs.LinuxMemory, curLimit uint64, hasMemsw bool) ([]fileWrite, error) {
	limit, swap := mem.Limit, swapOf(mem)
	if limit != nil && *limit == -1 && swap == nil && hasMemsw {
		// "No memory limit" must also lift memsw, or the kernel refuses the limit
		// (limit > memsw). runc does the same.
		unlimited := int64(-1)
		swap = &unlimited
	}
	if swap != nil && !hasMemsw {
		if *swap == -1 {
			swap = nil
		} else {
			return nil, fmt.Errorf("%s: %w: memory.memsw.limit_in_bytes does not exist (swap accounting is off: swapaccount=0 or no CONFIG_MEMCG_SWAP)", fMemSwap, ErrNotAvailable)
		}
	}
	wLimit := func() fileWrite {
		return fileWrite{fMemLimit, "memory.limit_in_bytes", strconv.FormatInt(*limit, 10)}
	}
	wSwap := func() fileWrite {
		return fileWrite{fMemSwap, "memory.memsw.limit_in_bytes", strconv.FormatInt(*swap, 10)}
	}
	switch {
	case limit != nil && swap != nil:
		if asLimit(*swap) >= curLimit {
			return []fileWrite{wSwap(), wLimit()}, nil
		}
		return []fileWrite{wLimit(), wSwap()}, nil
	case limit != nil:
		return []fileWrite{wLimit()}, nil
	case swap != nil:
		return []fileWrite{wSwap()}, nil
	}
	return nil, nil
}

// swapMaxV2 converts the spec's memory+swap limit to cgroup v2's memory.swap.max, which
// counts swap alone: swap - limit. limit is the memory limit in force (-1 for none). With
// no memory limit, all of memory+swap may be swap.
func swapMaxV2(swap, limit int64) (string, error) {
	switch {
	case swap == -1:
		return "max", nil
	case limit == -1:
		return strconv.FormatInt(swap, 10), nil
	case swap < limit:
		return "", fmt.Errorf("%s: %w: memory+swap limit %d is below the memory limit %d", fMemSwap, ErrInvalid, swap, limit)
	}
	return strconv.FormatInt(swap-limit, 10), nil
}

func v2Limit(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (m *Manager) setMemory(r *specs.LinuxResources) ([]string, error) {
	mem := r.Memory
	if mem == nil || *mem == (specs.LinuxMemory{}) {
		return nil, nil
	}
	t, err := m.controller("memory")
	if err != nil {
		return nil, unavailable("linux.resources.memory", err)
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && mem.Limit != nil && *mem.Limit >= 0 {
		file := "memory.usage_in_bytes"
		if t.v2 {
			file = "memory.current"
		}
		usage, err := readUint(t.dir, file)
		if err != nil {
			return nil, fieldErr(fMemLimit, err)
		}
		if uint64(*mem.Limit) < usage {
			return nil, fmt.Errorf("%s: %w: new limit %d is below the current usage %d (checkBeforeUpdate)", fMemLimit, ErrInvalid, *mem.Limit, usage)
		}
	}
	if t.v2 {
		return setMemoryV2(t.dir, mem)
	}
	return setMemoryV1(t.dir, mem)
}

func setMemoryV1(dir string, mem *specs.LinuxMemory) ([]string, error) {
	var warnings []string
	if mem.Limit != nil || swapOf(mem) != nil {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return nil, fieldErr(fMemLimit, err)
		}
		plan, err := planMemoryV1(mem, cur, exists(dir, "memory.memsw.limit_in_bytes"))
		if err != nil {
			return nil, err
		}
		for _, w := range plan {
			if err := set(w.field, dir, w.file, w.value); err != nil {
				return nil, err
			}
		}
	}
	if mem.Reservation != nil {
		if err := set(fMemReserve, dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return nil, err
		}
	}
	// Kernel memory limits are deprecated (the spec says runtimes may ignore them): kernels
	// from 5.16 refuse them and 6.x removed the files. Either way they become warnings.
	for _, k := range []struct {
		field, file string
		v           *int64
	}{{fMemKernel, "memory.kmem.limit_in_bytes", kernelLimit(mem)}, {fMemKernelTCP, "memory.kmem.tcp.limit_in_bytes", mem.KernelTCP}} {
		if k.v == nil {
			continue
		}
		if !exists(dir, k.file) {
			warnings = append(warnings, fmt.Sprintf("%s: ignored: this kernel has no %s", k.field, k.file))
			continue
		}
		err := writeFile(dir, k.file, strconv.FormatInt(*k.v, 10))
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
			warnings = append(warnings, fmt.Sprintf("%s: ignored: %v", k.field, err))
			continue
		}
		if err != nil {
			return warnings, fieldErr(k.field, err)
		}
	}
	if mem.Swappiness != nil {
		if err := set(fMemSwappiness, dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return warnings, err
		}
	}
	if mem.DisableOOMKiller != nil {
		if err := set(fMemOOM, dir, "memory.oom_control", boolValue(*mem.DisableOOMKiller)); err != nil {
			return warnings, err
		}
	}
	if mem.UseHierarchy != nil {
		if err := set(fMemHierarchy, dir, "memory.use_hierarchy", boolValue(*mem.UseHierarchy)); err != nil {
			return warnings, err
		}
	}
	return warnings, nil
}

func setMemoryV2(dir string, mem *specs.LinuxMemory) ([]string, error) {
	var warnings []string
	if swap := swapOf(mem); swap != nil || (mem.Limit != nil && *mem.Limit == -1) {
		var value string
		if swap == nil {
			// No memory limit and no swap value: lift swap too, as on v1.
			value = "max"
		} else {
			limit := int64(-1)
			if mem.Limit != nil {
				limit = *mem.Limit
			} else {
				cur, err := readUint(dir, "memory.max")
				if err != nil {
					return nil, fieldErr(fMemSwap, err)
				}
				if cur != math.MaxUint64 {
					limit = int64(cur)
				}
			}
			var err error
			if value, err = swapMaxV2(*swap, limit); err != nil {
				return nil, err
			}
		}
		if !exists(dir, "memory.swap.max") {
			// No swap accounting: "no swap limit" and "no swap" are what the kernel
			// does anyway; any other value cannot be applied.
			if value != "max" && value != "0" {
				return nil, fmt.Errorf("%s: %w: %s has no memory.swap.max (swap accounting is off)", fMemSwap, ErrNotAvailable, dir)
			}
		} else if err := set(fMemSwap, dir, "memory.swap.max", value); err != nil {
			return nil, err
		}
	}
	if mem.Limit != nil {
		if err := set(fMemLimit, dir, "memory.max", v2Limit(*mem.Limit)); err != nil {
			return nil, err
		}
	}
	if mem.Reservation != nil {
		if err := set(fMemReserve, dir, "memory.low", v2Limit(*mem.Reservation)); err != nil {
			return nil, err
		}
	}
	ignored := func(field string) {
		warnings = append(warnings, field+": ignored: not supported by cgroup v2")
	}
	if kernelLimit(mem) != nil {
		ignored(fMemKernel)
	}
	if mem.KernelTCP != nil {
		ignored(fMemKernelTCP)
	}
	if mem.Swappiness != nil {
		ignored(fMemSwappiness)
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		ignored(fMemOOM)
	}
	if mem.UseHierarchy != nil && !*mem.UseHierarchy {
		warnings = append(warnings, fMemHierarchy+": ignored: cgroup v2 is always hierarchical")
	}
	return warnings, nil
}
