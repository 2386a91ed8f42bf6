package cgroups

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Fuzz targets for everything that parses strings this package does not control: the
// mountinfo and /proc/self/cgroup of a host that may be a container with odd mounts,
// linux.cgroupsPath and unified keys from the user's config, device rules. Seed corpora are
// in testdata/fuzz/<target>/.

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(hybridMountinfo))
	f.Add([]byte(comountMountinfo))
	f.Add([]byte(pureV2Mountinfo))
	f.Fuzz(func(t *testing.T, data []byte) {
		mounts, err := parseMountinfo(data)
		if err != nil {
			return
		}
		for _, m := range mounts {
			if m.v2 && len(m.controllers) != 0 {
				t.Errorf("cgroup2 mount with v1 controllers: %+v", m)
			}
			if !m.v2 && len(m.controllers) == 0 {
				t.Errorf("v1 mount without controllers kept: %+v", m)
			}
		}
		for key := range chooseHierarchies(mounts) {
			if strings.HasPrefix(key, "name=") && key != KeySystemd {
				t.Errorf("foreign named hierarchy chosen: %q", key)
			}
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte(hybridProcCgroup))
	f.Add([]byte(comountProcCgroup))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseProcCgroup(data)
		if err != nil {
			return
		}
		for k, p := range m {
			if !strings.HasPrefix(p, "/") {
				t.Errorf("%q: path %q not absolute", k, p)
			}
			if got, err := underMountRoot(p, "/"); err != nil || got != p {
				t.Errorf("underMountRoot(%q, /) = %q, %v", p, got, err)
			}
			if got, err := underMountRoot(p, "/docker"); err == nil && !strings.HasPrefix(got, "/") {
				t.Errorf("underMountRoot(%q, /docker) = %q", p, got)
			}
		}
	})
}

// A config's cgroupsPath must never resolve outside the hierarchy (absolute) or the runtime's
// own cgroup (relative), nor to the root of either.
func FuzzCleanCgroupPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string) {
		rel, err := cleanCgroupPath(p)
		if err != nil {
			return
		}
		const base = "/sys/fs/cgroup/memory/own"
		got := filepath.Join(base, rel)
		if got == base || !strings.HasPrefix(got, base+"/") {
			t.Errorf("cleanCgroupPath(%q) = %q resolves to %q", p, rel, got)
		}
	})
}

// An accepted unified key names a file directly in the cgroup directory.
func FuzzUnifiedKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, key string) {
		ctrl, err := unifiedController(key)
		if err != nil {
			return
		}
		const dir = "/sys/fs/cgroup/c"
		if p := filepath.Join(dir, key); filepath.Dir(p) != dir || filepath.Base(p) != key {
			t.Errorf("key %q resolves to %q", key, p)
		}
		if ctrl == "" || !strings.HasPrefix(key, ctrl+".") {
			t.Errorf("key %q: controller %q", key, ctrl)
		}
	})
}

// Arbitrary rule lists (decoded from bytes) must assemble into a program that passes the
// interpreter's verifier checks and means what the rules mean.
func FuzzDeviceFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var rules []devRule
		for len(data) >= 5 && len(rules) < 32 {
			rules = append(rules, devRule{
				allow:  data[0]&1 == 1,
				typ:    "abc"[int(data[1])%3],
				major:  int64(data[2]%4) - 1, // -1 (any) or 0..2
				minor:  int64(data[3]%4) - 1,
				access: data[4]%7 + 1,
			})
			data = data[5:]
		}
		prog := deviceFilter(rules)
		for _, typ := range []uint32{unix.BPF_DEVCG_DEV_BLOCK, unix.BPF_DEVCG_DEV_CHAR} {
			for major := uint32(0); major < 4; major++ {
				for minor := uint32(0); minor < 4; minor++ {
					for access := uint32(1); access <= 7; access++ {
						if got, want := runFilter(t, prog, typ, major, minor, access), allowedByRules(rules, typ, major, minor, uint8(access)); got != want {
							t.Fatalf("rules %+v: type %d %d:%d access %d: program %v, reference %v", rules, typ, major, minor, access, got, want)
						}
					}
				}
			}
		}
	})
}

func FuzzParseCPUList(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := parseCPUList(s)
		if err == nil && len(cpus) > 1<<14*(strings.Count(s, ",")+1)+strings.Count(s, ",")+1 {
			t.Errorf("%q: %d cpus", s, len(cpus))
		}
	})
}
