package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// defaultDeviceRules are the devices every container may use whatever its device list says, because
// the runtime-spec requires them to exist (/dev/null, /dev/tty, the terminal...), as runc and crun
// allow them. -1 is a wildcard.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	devRule("c", -1, -1, "m"), devRule("b", -1, -1, "m"),
	devRule("c", 1, 3, "rwm"), devRule("c", 1, 5, "rwm"), devRule("c", 1, 7, "rwm"),
	devRule("c", 1, 8, "rwm"), devRule("c", 1, 9, "rwm"), devRule("c", 5, 0, "rwm"),
	devRule("c", 5, 1, "rwm"), devRule("c", 5, 2, "rwm"), devRule("c", 136, -1, "rwm"),
	devRule("c", 10, 200, "rwm"),
}

// effectiveResources is what the cgroup gets: the spec's resources with the default devices and the
// devices of linux.devices allowed after the spec's own rules (later rules win).
func effectiveResources(spec *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if spec.Linux.Resources != nil {
		r = *spec.Linux.Resources
	}
	if r.Devices == nil && len(spec.Linux.Devices) == 0 && spec.Linux.Resources == nil {
		// No device policy at all: leave the cgroup's (normally allow-all) alone.
		return spec.Linux.Resources
	}
	devs := append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	devs = append(devs, defaultDeviceRules...)
	for _, d := range spec.Linux.Devices {
		if d.Type == "p" {
			continue
		}
		typ := d.Type
		if typ == "u" {
			typ = "c"
		}
		devs = append(devs, devRule(typ, d.Major, d.Minor, "rwm"))
	}
	r.Devices = devs
	return &r
}
