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
	i64 := func(name, v string, dst **int64) error {
		if v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return usagef("--%s %q: not a number", name, v)
		}
		*dst = &n
		return nil
	}
	u64 := func(name, v string, dst **uint64) error {
		if v == "" {
			return nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return usagef("--%s %q: not a non-negative number", name, v)
		}
		*dst = &n
		return nil
	}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	for _, step := range []func() error{
		func() error { return maybe(memory, func() error { return i64("memory", memory, &mem().Limit) }) },
		func() error {
			return maybe(memReservation, func() error { return i64("memory-reservation", memReservation, &mem().Reservation) })
		},
		func() error { return maybe(memSwap, func() error { return i64("memory-swap", memSwap, &mem().Swap) }) },
		func() error {
			return maybe(kernelMem, func() error { return i64("kernel-memory", kernelMem, &mem().Kernel) })
		},
		func() error {
			return maybe(kernelTCP, func() error { return i64("kernel-memory-tcp", kernelTCP, &mem().KernelTCP) })
		},
		func() error {
			return maybe(cpuShares, func() error { return u64("cpu-share", cpuShares, &cpu().Shares) })
		},
		func() error { return maybe(cpuQuota, func() error { return i64("cpu-quota", cpuQuota, &cpu().Quota) }) },
		func() error {
			return maybe(cpuPeriod, func() error { return u64("cpu-period", cpuPeriod, &cpu().Period) })
		},
		func() error {
			return maybe(cpuRtRuntime, func() error { return i64("cpu-rt-runtime", cpuRtRuntime, &cpu().RealtimeRuntime) })
		},
		func() error {
			return maybe(cpuRtPeriod, func() error { return u64("cpu-rt-period", cpuRtPeriod, &cpu().RealtimePeriod) })
		},
		func() error {
			return maybe(pidsLimit, func() error {
				r.Pids = &specs.LinuxPids{}
				return i64("pids-limit", pidsLimit, &r.Pids.Limit)
			})
		},
		func() error {
			return maybe(blkioWeight, func() error {
				n, err := strconv.ParseUint(blkioWeight, 10, 16)
				if err != nil {
					return usagef("--blkio-weight %q: want 10-1000", blkioWeight)
				}
				w := uint16(n)
				r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
				return nil
			})
		},
	} {
		if err := step(); err != nil {
			return err
		}
	}
	if cpuset != "" {
		cpu().Cpus = cpuset
	}
	if mems != "" {
		cpu().Mems = mems
	}
	warnings, err := c.Update(ctx, r)
	for _, w := range warnings {
		g.rt.Logger.Warn(w)
	}
	return err
}

func maybe(v string, f func() error) error {
	if v == "" {
		return nil
	}
	return f()
}
