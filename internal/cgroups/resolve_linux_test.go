package cgroups

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The mountinfo of the CI machine: every v1 controller separately, name=systemd, cgroup2 at
// /sys/fs/cgroup/unified.
const hybridMountinfo = `25 1 254:1 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/hugetlb rw,relatime - cgroup cgroup rw,hugetlb
`

const hybridProcCgroup = `10:hugetlb:/
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/ccab
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`

// A typical systemd host: cpu,cpuacct and net_cls,net_prio co-mounted, with options and
// optional fields, plus a named hierarchy that is not systemd's.
const comountMountinfo = `24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 24 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:26 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
31 26 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
32 26 0:30 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
33 26 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
34 26 0:32 / /sys/fs/cgroup/my\040tool rw,relatime shared:16 - cgroup none rw,name=mytool,release_agent=/bin/x
`

const comountProcCgroup = `12:name=mytool:/
5:memory:/user.slice
4:net_cls,net_prio:/
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/session-1.scope
0::/user.slice/session-1.scope
`

const pureV2Mountinfo = `29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

// fakeHost writes mountinfo and /proc/self/cgroup into a temporary root and returns a host
// that reads them.
func fakeHost(t *testing.T, mountinfo, procCgroup string) host {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"proc/self/mountinfo": mountinfo,
		"proc/self/cgroup":    procCgroup,
	})
	return host{root: root, mountinfo: filepath.Join(root, "proc/self/mountinfo"), procCgroup: filepath.Join(root, "proc/self/cgroup")}
}

// writeTree creates files (and their directories) below root. A name ending in "/" is a
// directory.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readTestFile(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestNewPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mountinfo string
		proc      string
		path      string
		want      map[string]string // relative to the fake root
	}{
		{
			name: "hybrid absolute", mountinfo: hybridMountinfo, proc: hybridProcCgroup, path: "/berth/c1",
			want: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu/berth/c1", "cpuacct": "/sys/fs/cgroup/cpuacct/berth/c1",
				"cpuset": "/sys/fs/cgroup/cpuset/berth/c1", "memory": "/sys/fs/cgroup/memory/berth/c1",
				"devices": "/sys/fs/cgroup/devices/berth/c1", "freezer": "/sys/fs/cgroup/freezer/berth/c1",
				"blkio": "/sys/fs/cgroup/blkio/berth/c1", "pids": "/sys/fs/cgroup/pids/berth/c1",
				"hugetlb": "/sys/fs/cgroup/hugetlb/berth/c1", "name=systemd": "/sys/fs/cgroup/systemd/berth/c1",
				"unified": "/sys/fs/cgroup/unified/berth/c1",
			},
		},
		{
			name: "hybrid relative", mountinfo: hybridMountinfo, proc: hybridProcCgroup, path: "berth/c1",
			want: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu/berth/c1", "cpuacct": "/sys/fs/cgroup/cpuacct/berth/c1",
				"cpuset": "/sys/fs/cgroup/cpuset/berth/c1", "memory": "/sys/fs/cgroup/memory/process_api/ccab/berth/c1",
				"devices": "/sys/fs/cgroup/devices/berth/c1", "freezer": "/sys/fs/cgroup/freezer/berth/c1",
				"blkio": "/sys/fs/cgroup/blkio/berth/c1", "pids": "/sys/fs/cgroup/pids/berth/c1",
				"hugetlb": "/sys/fs/cgroup/hugetlb/berth/c1", "name=systemd": "/sys/fs/cgroup/systemd/berth/c1",
				"unified": "/sys/fs/cgroup/unified/berth/c1",
			},
		},
		{
			name: "co-mounted relative", mountinfo: comountMountinfo, proc: comountProcCgroup, path: "c2",
			want: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu,cpuacct/user.slice/c2", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/user.slice/c2",
				"net_cls": "/sys/fs/cgroup/net_cls,net_prio/c2", "net_prio": "/sys/fs/cgroup/net_cls,net_prio/c2",
				"memory":       "/sys/fs/cgroup/memory/user.slice/c2",
				"name=systemd": "/sys/fs/cgroup/systemd/user.slice/session-1.scope/c2",
				"unified":      "/sys/fs/cgroup/unified/user.slice/session-1.scope/c2",
			},
		},
		{
			name: "co-mounted absolute", mountinfo: comountMountinfo, proc: "garbage that is not read", path: "/a/b",
			want: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu,cpuacct/a/b", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/a/b",
				"net_cls": "/sys/fs/cgroup/net_cls,net_prio/a/b", "net_prio": "/sys/fs/cgroup/net_cls,net_prio/a/b",
				"memory": "/sys/fs/cgroup/memory/a/b", "name=systemd": "/sys/fs/cgroup/systemd/a/b",
				"unified": "/sys/fs/cgroup/unified/a/b",
			},
		},
		{
			name: "pure v2 absolute", mountinfo: pureV2Mountinfo, proc: "0::/user.slice\n", path: "/berth/c3",
			want: map[string]string{"": "/sys/fs/cgroup/berth/c3"},
		},
		{
			name: "pure v2 relative", mountinfo: pureV2Mountinfo, proc: "0::/user.slice/x.scope\n", path: "c3",
			want: map[string]string{"": "/sys/fs/cgroup/user.slice/x.scope/c3"},
		},
		{
			// Inside a container: the hierarchy's /docker/abc is mounted at the usual place.
			name:      "bind-mounted subtree relative",
			mountinfo: "1 0 0:1 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
			proc:      "4:memory:/docker/abc/sub\n", path: "c4",
			want: map[string]string{"memory": "/sys/fs/cgroup/memory/sub/c4"},
		},
		{
			// The same hierarchy twice: the mount of its root wins.
			name: "root mount preferred",
			mountinfo: "1 0 0:1 /x /mnt/mem rw - cgroup cgroup rw,memory\n" +
				"2 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
			proc: "", path: "/c5",
			want: map[string]string{"memory": "/sys/fs/cgroup/memory/c5"},
		},
		{
			name: "trailing slash and dots cleaned", mountinfo: pureV2Mountinfo, proc: "", path: "/berth//./c6/",
			want: map[string]string{"": "/sys/fs/cgroup/berth/c6"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := fakeHost(t, tc.mountinfo, tc.proc)
			m, err := newManager(Config{Path: tc.path}, h)
			if err != nil {
				t.Fatal(err)
			}
			want := make(map[string]string)
			for k, v := range tc.want {
				want[k] = filepath.Join(h.root, v)
			}
			if got := m.Paths(); !maps.Equal(got, want) {
				t.Errorf("Paths():\n got %v\nwant %v", got, want)
			}
			if _, isV2 := tc.want[""]; m.IsV2() != isV2 {
				t.Errorf("IsV2() = %v", m.IsV2())
			}
			// Load gives the same manager back.
			if got := Load(m.Paths()).Paths(); !maps.Equal(got, want) {
				t.Errorf("Load(Paths()) = %v", got)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	h := fakeHost(t, hybridMountinfo, hybridProcCgroup)
	for _, p := range []string{"", "/", ".", "//", "/..", "a/../b", "../x", "/berth/.."} {
		if _, err := newManager(Config{Path: p}, h); !errors.Is(err, ErrInvalid) {
			t.Errorf("Path %q: err = %v, want ErrInvalid", p, err)
		}
	}
	// A relative path needs the process's cgroup in every hierarchy.
	h2 := fakeHost(t, hybridMountinfo, "4:memory:/\n")
	if _, err := newManager(Config{Path: "x"}, h2); !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "hierarchy") {
		t.Errorf("relative path without /proc/self/cgroup entries: err = %v", err)
	}
	h3 := fakeHost(t, "1 0 0:1 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "4:memory:/elsewhere\n")
	if _, err := newManager(Config{Path: "x"}, h3); err == nil {
		t.Error("relative path outside the mounted subtree: no error")
	}
	h4 := fakeHost(t, "25 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n", "")
	if _, err := newManager(Config{Path: "/x"}, h4); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("no cgroup mounted: err = %v", err)
	}
}

func TestNewSystemd(t *testing.T) {
	t.Parallel()
	h := fakeHost(t, hybridMountinfo, hybridProcCgroup)
	_, err := newManager(Config{Path: "system.slice:berth:c1", Systemd: true}, h)
	if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "systemd is not running") {
		t.Errorf("no /run/systemd/system: err = %v", err)
	}
	writeTree(t, h.root, map[string]string{"run/systemd/system/": ""})
	_, err = newManager(Config{Path: "system.slice:berth:c1", Systemd: true}, h)
	if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "not implemented") {
		t.Errorf("systemd running: err = %v", err)
	}
}

func TestParseMountinfoControllers(t *testing.T) {
	t.Parallel()
	mounts, err := parseMountinfo([]byte(comountMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mounts {
		got = append(got, m.mountpoint+"="+strings.Join(m.controllers, "+"))
	}
	want := []string{
		"/sys/fs/cgroup/unified=",
		"/sys/fs/cgroup/systemd=name=systemd",
		"/sys/fs/cgroup/cpu,cpuacct=cpu+cpuacct",
		"/sys/fs/cgroup/net_cls,net_prio=net_cls+net_prio",
		"/sys/fs/cgroup/memory=memory",
		"/sys/fs/cgroup/my tool=name=mytool",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, bad := range []string{
		"1 0 0:1 / - cgroup cgroup rw,memory\n",         // too few fields
		"1 0 0:1 / /x\\04 rw - cgroup cgroup rw,memory", // bad escape
		"1 0 0:1 / /x rw - cgroup cgroup\n",             // no super options
	} {
		if _, err := parseMountinfo([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	t.Parallel()
	got, err := parseProcCgroup([]byte(comountProcCgroup + "7:pids:/a:b (deleted)\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"name=mytool": "/", "memory": "/user.slice", "net_cls": "/", "net_prio": "/",
		"cpu": "/user.slice", "cpuacct": "/user.slice", "name=systemd": "/user.slice/session-1.scope",
		"": "/user.slice/session-1.scope", "pids": "/a:b",
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, bad := range []string{"x:memory:/\n", "1:memory\n", "1:memory:relative\n"} {
		if _, err := parseProcCgroup([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err = %v, want ErrInvalid", bad, err)
		}
	}
}
