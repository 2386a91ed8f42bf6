package cgroups

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	fCPUShares    = "linux.resources.cpu.shares"
	fCPUQuota     = "linux.resources.cpu.quota"
	fCPUBurst     = "linux.resources.cpu.burst"
	fCPUPeriod    = "linux.resources.cpu.period"
	fCPURtRuntime = "linux.resources.cpu.realtimeRuntime"
	fCPURtPeriod  = "linux.resources.cpu.realtimePeriod"
	fCPUCpus      = "linux.resources.cpu.cpus"
	fCPUMems      = "linux.resources.cpu.mems"
	fCPUIdle      = "linux.resources.cpu.idle"
)

// sharesToWeight converts v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000] with the
// linear mapping 1 + (shares-2)*9999/262142. This is the mapping runc (through 1.2), crun
// (before 1.23) and the kubelet documentation use, and the one the runc and crun on this
// project's machines apply, so `update --cpu-share` gives the same weight with berth as with
// them. Its known flaw is that the default 1024 shares map to weight 39, not v2's default
// 100; a later quadratic mapping (adopted by crun 1.23 and newer runc) fixes that but would
// disagree with those anchors. 0 means "not set" (a v1 config cannot say 0 shares: the
// kernel raises it to 2), values outside the v1 range are clamped.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + (shares-2)*9999/262142
}

func (m *Manager) setCPU(r *specs.LinuxResources) ([]string, error) {
	c := r.CPU
	if c == nil {
		return nil, nil
	}
	if c.Cpus != "" || c.Mems != "" {
		if err := m.setCpuset(c); err != nil {
			return nil, err
		}
	}
	if c.Shares == nil && c.Quota == nil && c.Burst == nil && c.Period == nil && c.RealtimeRuntime == nil && c.RealtimePeriod == nil && c.Idle == nil {
		return nil, nil
	}
	t, err := m.controller("cpu")
	if err != nil {
		return nil, unavailable("linux.resources.cpu", err)
	}
	if t.v2 {
		return nil, setCPUV2(t.dir, c)
	}
	return nil, setCPUV1(t.dir, c)
}

func (m *Manager) setCpuset(c *specs.LinuxCPU) error {
	t, err := m.controller("cpuset")
	if err != nil {
		return unavailable("linux.resources.cpu.cpus/mems", err)
	}
	// Same file names on v1 and v2. mems before cpus makes no difference to the kernel;
	// the order only fixes which error is reported first.
	if c.Cpus != "" {
		if err := set(fCPUCpus, t.dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := set(fCPUMems, t.dir, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

// writePair writes two files whose values the kernel checks against each other (period and
// quota, rt period and runtime): a write that is valid only once the other one is done
// fails with EINVAL, so on EINVAL the other is written first and the first one retried.
func writePair(dir string, first, second *fileWrite) error {
	if first == nil || second == nil {
		for _, w := range []*fileWrite{first, second} {
			if w != nil {
				if err := set(w.field, dir, w.file, w.value); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := writeFile(dir, first.file, first.value)
	if err == nil {
		return set(second.field, dir, second.file, second.value)
	}
	if !errors.Is(err, unix.EINVAL) {
		return fieldErr(first.field, err)
	}
	if err := set(second.field, dir, second.file, second.value); err != nil {
		return err
	}
	return set(first.field, dir, first.file, first.value)
}

func setCPUV1(dir string, c *specs.LinuxCPU) error {
	if c.Shares != nil {
		if err := set(fCPUShares, dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
			return err
		}
	}
	var period, quota, burst, rtPeriod, rtRuntime *fileWrite
	if c.Period != nil {
		period = &fileWrite{fCPUPeriod, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)}
	}
	if c.Quota != nil {
		q := *c.Quota
		if q < 0 {
			q = -1
		}
		quota = &fileWrite{fCPUQuota, "cpu.cfs_quota_us", strconv.FormatInt(q, 10)}
	}
	if c.Burst != nil {
		burst = &fileWrite{fCPUBurst, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)}
	}
	// The kernel checks period, quota and burst against each other and against the parent
	// on every write. A shorter period can be refused until the quota is lowered, and a
	// lower quota until the burst is: retry those in the other order.
	periodLater := false
	if period != nil {
		err := writeFile(dir, period.file, period.value)
		switch {
		case err == nil:
		case errors.Is(err, unix.EINVAL) && quota != nil:
			periodLater = true
		default:
			return fieldErr(period.field, err)
		}
	}
	if err := writePair(dir, quota, burst); err != nil {
		return err
	}
	if periodLater {
		if err := set(period.field, dir, period.file, period.value); err != nil {
			return err
		}
	}
	if c.RealtimePeriod != nil {
		rtPeriod = &fileWrite{fCPURtPeriod, "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10)}
	}
	if c.RealtimeRuntime != nil {
		rtRuntime = &fileWrite{fCPURtRuntime, "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10)}
	}
	if err := writePair(dir, rtPeriod, rtRuntime); err != nil {
		return err
	}
	if c.Idle != nil {
		if err := set(fCPUIdle, dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	return nil
}

// cpuMaxV2 builds cpu.max ("$QUOTA $PERIOD", quota "max" for none) from the fields that are
// set and the current value for those that are not, so that setting only the quota keeps
// the period and the other way round.
func cpuMaxV2(quota *int64, period *uint64, current string) (string, error) {
	curQuota, curPeriod, ok := strings.Cut(strings.TrimSpace(current), " ")
	if !ok {
		return "", fmt.Errorf("%w: unexpected cpu.max %q", ErrInvalid, current)
	}
	q, p := curQuota, curPeriod
	if quota != nil {
		if *quota < 0 {
			q = "max"
		} else {
			q = strconv.FormatInt(*quota, 10)
		}
	}
	if period != nil {
		p = strconv.FormatUint(*period, 10)
	}
	return q + " " + p, nil
}

func setCPUV2(dir string, c *specs.LinuxCPU) error {
	if c.RealtimeRuntime != nil || c.RealtimePeriod != nil {
		return fmt.Errorf("linux.resources.cpu.realtimeRuntime/realtimePeriod: %w: cgroup v2 has no realtime CPU controller", ErrNotAvailable)
	}
	if c.Shares != nil {
		if w := sharesToWeight(*c.Shares); w != 0 {
			if err := set(fCPUShares, dir, "cpu.weight", strconv.FormatUint(w, 10)); err != nil {
				return err
			}
		}
	}
	if c.Quota != nil || c.Period != nil {
		field := fCPUQuota
		if c.Quota == nil {
			field = fCPUPeriod
		}
		cur, err := readFile(dir, "cpu.max")
		if err != nil {
			return fieldErr(field, err)
		}
		v, err := cpuMaxV2(c.Quota, c.Period, cur)
		if err != nil {
			return fieldErr(field, err)
		}
		max := &fileWrite{field, "cpu.max", v}
		var burst *fileWrite
		if c.Burst != nil {
			burst = &fileWrite{fCPUBurst, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10)}
		}
		// A lower quota is refused while the old burst exceeds it; writePair then writes
		// the burst first.
		if err := writePair(dir, max, burst); err != nil {
			return err
		}
	} else if c.Burst != nil {
		if err := set(fCPUBurst, dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := set(fCPUIdle, dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	return nil
}
