package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/runtime"
)

func cmdUpdate(ctx context.Context, g *globals, args []string) error {
	var (
		resources                                        string
		blkioWeight, cpuShares, cpuPeriod, cpuRtPeriod   string
		cpuQuota, cpuRtRuntime, memory, memReservation   string
		memSwap, kernelMem, kernelTCP, pidsLimit, cpuset string
		mems, l3Cache, memBw                             string
	)
	f := newFlags("update")
	f.str(&resources, "", "resources JSON file (runtime-spec linux.resources), - for stdin", "resources", "r")
	f.str(&blkioWeight, "", "block IO weight (10-1000)", "blkio-weight")
	f.str(&cpuPeriod, "", "CPU CFS period (µs)", "cpu-period")
	f.str(&cpuQuota, "", "CPU CFS quota (µs)", "cpu-quota")
	f.str(&cpuShares, "", "CPU shares", "cpu-share")
	f.str(&cpuRtPeriod, "", "CPU realtime period (µs)", "cpu-rt-period")
	f.str(&cpuRtRuntime, "", "CPU realtime runtime (µs)", "cpu-rt-runtime")
	f.str(&cpuset, "", "CPUs allowed (0-3, 0,1)", "cpuset-cpus")
	f.str(&mems, "", "memory nodes allowed", "cpuset-mems")
	f.str(&kernelMem, "", "kernel memory limit (deprecated)", "kernel-memory")
	f.str(&kernelTCP, "", "kernel TCP memory limit (deprecated)", "kernel-memory-tcp")
	f.str(&memory, "", "memory limit (bytes)", "memory")
	f.str(&memReservation, "", "memory soft limit (bytes)", "memory-reservation")
	f.str(&memSwap, "", "memory plus swap limit (bytes)", "memory-swap")
	f.str(&pidsLimit, "", "maximum number of processes", "pids-limit")
	f.str(&l3Cache, "", "Intel RDT L3 cache schema", "l3-cache-schema")
	f.str(&memBw, "", "Intel RDT memory bandwidth schema", "mem-bw-schema")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	c, err := load(g, rest)
	if err != nil {
		return err
	}
	if l3Cache != "" || memBw != "" {
		return fmt.Errorf("--l3-cache-schema/--mem-bw-schema: %w: Intel RDT is not supported", runtime.ErrNotSupported)
	}
	r := &specs.LinuxResources{}
	if resources != "" {
		var in io.Reader = os.Stdin
		if resources != "-" {
			fh, err := os.Open(resources)
			if err != nil {
				return fmt.Errorf("--resources: %w", err)
			}
			defer fh.Close()
			in = fh
		}
		if err := json.NewDecoder(in).Decode(r); err != nil {
			return fmt.Errorf("--resources: %w: %v", runtime.ErrInvalid, err)
		}
	}
	var perr error
	i64 := func(name, v string) *int64 {
		if v == "" || perr != nil {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			perr = usagef("--%s %q: not a number", name, v)
			return nil
		}
		return &n
	}
	u64 := func(name, v string) *uint64 {
		if v == "" || perr != nil {
			return nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			perr = usagef("--%s %q: not a non-negative number", name, v)
			return nil
		}
		return &n
	}
	if memory+memReservation+memSwap+kernelMem+kernelTCP != "" {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		m := r.Memory
		set64(&m.Limit, i64("memory", memory))
		set64(&m.Reservation, i64("memory-reservation", memReservation))
		set64(&m.Swap, i64("memory-swap", memSwap))
		// runc's flags for kernel memory are kept: the cgroups package ignores them, with a
		// warning, where the kernel no longer has them.
		//lint:ignore SA1019 see above
		set64(&m.Kernel, i64("kernel-memory", kernelMem))
		set64(&m.KernelTCP, i64("kernel-memory-tcp", kernelTCP))
	}
	if cpuShares+cpuQuota+cpuPeriod+cpuRtRuntime+cpuRtPeriod+cpuset+mems != "" {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		c := r.CPU
		setU64(&c.Shares, u64("cpu-share", cpuShares))
		set64(&c.Quota, i64("cpu-quota", cpuQuota))
		setU64(&c.Period, u64("cpu-period", cpuPeriod))
		set64(&c.RealtimeRuntime, i64("cpu-rt-runtime", cpuRtRuntime))
		setU64(&c.RealtimePeriod, u64("cpu-rt-period", cpuRtPeriod))
		if cpuset != "" {
			c.Cpus = cpuset
		}
		if mems != "" {
			c.Mems = mems
		}
	}
	if pidsLimit != "" {
		r.Pids = &specs.LinuxPids{Limit: i64("pids-limit", pidsLimit)}
	}
	if blkioWeight != "" {
		n, err := strconv.ParseUint(blkioWeight, 10, 16)
		if err != nil {
			return usagef("--blkio-weight %q: want 10-1000", blkioWeight)
		}
		w := uint16(n)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	if perr != nil {
		return perr
	}
	warnings, err := c.Update(ctx, r)
	for _, w := range warnings {
		g.rt.Logger.Warn(w)
	}
	return err
}

func set64(dst **int64, v *int64) {
	if v != nil {
		*dst = v
	}
}

func setU64(dst **uint64, v *uint64) {
	if v != nil {
		*dst = v
	}
}
