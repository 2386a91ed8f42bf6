package runtime_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestSpecFields checks, from inside containers, runtime-spec fields that the conformance suite does
// not reach.
func TestSpecFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name string
		args []string
		edit func(*specs.Spec)
		want []string
	}{
		{"hostname and domainname", []string{"/checker", "uname"}, func(s *specs.Spec) {
			s.Hostname, s.Domainname = "berth-host", "berth.example"
		}, []string{"berth-host berth.example"}},
		{"time namespace offsets", []string{"/checker", "clocks"}, func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10 * 365 * 86400}, "boottime": {Secs: 20 * 365 * 86400}}
		}, []string{"monotonic 3", "boottime 6"}},
		{"scheduler and io priority", []string{"/checker", "sched"}, func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
		}, []string{"policy 3 errno 0 ioprio class 2 level 6 nice 5"}},
		{"memory policy", []string{"sh", "-c", "grep -q bind:0 /proc/self/numa_maps && echo policy-bind"}, func(s *specs.Spec) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0"}
		}, []string{"policy-bind"}},
		{"umask", []string{"/checker", "umask"}, func(s *specs.Spec) {
			m := uint32(0o027)
			s.Process.User.Umask = &m
		}, []string{"umask 0027"}},
		{"sysctl in the container's network namespace", []string{"cat", "/proc/sys/net/ipv4/ip_forward"}, func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, []string{"1"}},
		{"device node", []string{"sh", "-c", "/checker stat /dev/mynull; echo x > /dev/mynull && echo written"}, func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			mode := os.FileMode(0o600)
			uid, gid := uint32(1000), uint32(1000)
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid}}
		}, []string{"stat /dev/mynull uid 1000 gid 1000 mode 600 ok", "written"}},
		{"seccomp errno", []string{"/checker", "uname"}, func(s *specs.Spec) {
			errno := uint(unix.EPERM)
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM},
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActErrno, ErrnoRet: &errno}},
			}
		}, []string{"EPERM"}},
	}
	if runtime.GOARCH == "amd64" {
		cases = append(cases, struct {
			name string
			args []string
			edit func(*specs.Spec)
			want []string
		}{"personality LINUX32", []string{"/checker", "uname"}, func(s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		}, []string{"uname i686"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.runOut(c.args, c.edit)
			if r.code != 0 {
				t.Fatalf("run: %v", r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("want %q in %v", w, r)
				}
			}
		})
	}
}

// TestIDMappedMount: files of the host's root seen through an idmapped bind mount belong to the
// mapped user.
func TestIDMappedMount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.runOut([]string{"/checker", "stat", "/idm/f"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: "/idm", Type: "bind", Source: src, Options: []string{"rbind", "idmap"},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
		})
	})
	if r.code != 0 && strings.Contains(r.stderr, "idmapped") {
		t.Skipf("the kernel or filesystem refuses idmapped mounts here: %v", r)
	}
	if !strings.Contains(r.stdout, "uid 1000 gid 1000") {
		t.Fatalf("idmapped mount: %v", r)
	}
}

// TestSeccompListener: with SCMP_ACT_NOTIFY, the runtime sends the container process state and the
// listener to linux.seccomp.listenerPath. Closing the listener makes the notified syscall fail.
func TestSeccompListener(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sock := filepath.Join(shortTemp(t, "berth-sc-"), "l.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, 1024)
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- err.Error()
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds := 0
		for _, m := range msgs {
			if f, err := unix.ParseUnixRights(&m); err == nil {
				fds += len(f)
				for _, fd := range f {
					unix.Close(fd) // the notified syscall then fails with ENOSYS
				}
			}
		}
		got <- fmt.Sprintf("fds=%d %s", fds, buf[:n])
	}()
	r := e.runOut([]string{"/checker", "uname"}, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "berth-test",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActNotify}},
		}
	})
	var msg string
	select {
	case msg = <-got:
	case <-time.After(10 * time.Second):
		t.Fatalf("no listener received; run: %v", r)
	}
	if !strings.Contains(msg, "fds=1") || !strings.Contains(msg, `"metadata":"berth-test"`) || !strings.Contains(msg, `"seccompFd"`) {
		t.Fatalf("listener message: %s", msg)
	}
	if !strings.Contains(r.stdout, "ENOSYS") {
		t.Errorf("the notified syscall should fail once the listener is closed: %v", r)
	}
}

// TestUpdateEventsAffinity: update changes the cgroup, events --stats reads it, and an exec'd
// process gets its execCPUAffinity.
func TestUpdateEventsAffinity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := randomID("upd")
	e.create(id, e.bundle([]string{"/checker", "sleep", "60s"}, nil))
	e.must("start", id)
	e.must("update", "--pids-limit", "77", "--memory", "67108864", id)
	var ev struct {
		Type string
		ID   string
		Data struct {
			Pids   struct{ Current, Limit uint64 }
			Memory struct{ Usage struct{ Limit uint64 } }
		}
	}
	out := e.must("events", "--stats", id).stdout
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats: %v in %q", err, out)
	}
	if ev.Type != "stats" || ev.ID != id || ev.Data.Pids.Limit != 77 || ev.Data.Pids.Current < 1 || ev.Data.Memory.Usage.Limit != 67108864 {
		t.Errorf("events --stats after update: %+v (%s)", ev, out)
	}
	proc := filepath.Join(t.TempDir(), "p.json")
	b, _ := json.Marshal(specs.Process{Args: []string{"/checker", "affinity"}, Cwd: "/", ExecCPUAffinity: &specs.CPUAffinity{Final: "0"}})
	if err := os.WriteFile(proc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.must("exec", "--process", proc, id); !strings.Contains(r.stdout, "affinity [0]") {
		t.Errorf("execCPUAffinity: %v", r)
	}
}

// TestForegroundTerminal: run with a terminal and no console socket keeps the terminal in the
// runtime and relays it.
func TestForegroundTerminal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bundle([]string{"sh", "-c", "tty; echo cols $(stty size)"}, func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	r := runInPTY(t, 30*time.Second, runtimeBin, "--root", e.root, "run", "--bundle", b, randomID("tty"))
	if r.code != 0 || !strings.Contains(r.out, "/dev/pts/0") {
		t.Fatalf("run with a terminal: %+v", r)
	}
}

// TestUserNamespaceWithBindMount: in a new user namespace, bind sources the container's root could
// not reach by path are cloned by the runtime and moved in.
func TestUserNamespaceWithBindMount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := t.TempDir() // under /tmp, with a 0700 parent the mapped root may not search
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	// /mnt exists in the image: the mapped root could not create a mount point in a root owned by
	// the host's root.
	r := e.runOut([]string{"sh", "-c", "id -u; cat /proc/self/uid_map; cat /mnt/f"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"rbind", "ro"}})
	})
	if r.code != 0 || !strings.Contains(r.stdout, "100000") || !strings.Contains(r.stdout, "from-host") {
		t.Fatalf("user namespace with a bind mount: %v", r)
	}
}

// TestRootless: an unprivileged user runs a container of its own (user namespace, no cgroups).
func TestRootless(t *testing.T) {
	t.Parallel()
	needRoot(t) // to prepare a user's files; the runtime then runs as nobody
	const nobody = 65534
	dir, err := os.MkdirTemp("/tmp", "berth-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("cp", "-a", rootfs, filepath.Join(dir, "rootfs")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	bin := filepath.Join(dir, "berth-runtime")
	if out, err := exec.Command("cp", runtimeBin, bin).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	as := func(args ...string) cmdResult {
		return runCmd(t, 30*time.Second, "setpriv", append([]string{"--reuid", "65534", "--regid", "65534", "--clear-groups",
			"env", "-i", "PATH=/usr/bin:/bin", "HOME=" + dir, "XDG_RUNTIME_DIR=" + filepath.Join(dir, "run")}, args...)...)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", nobody, nobody), dir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	_ = os.Chmod(dir, 0o755)
	want(t, "spec --rootless", as(bin, "spec", "--rootless", "--bundle", dir), 0)
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Terminal = false
	s.Process.Args = []string{"sh", "-c", "id -u; echo map $(cat /proc/self/uid_map); touch /tmp/x && echo writable"}
	s.Root.Readonly = false
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	want(t, "rootless run", as(bin, "run", "--bundle", dir, "rl"), 0, "0\n", fmt.Sprintf("map 0 %d 1", nobody), "writable")
	want(t, "nothing left", as(bin, "list", "-q"), 0)
}

// TestTimerSlackIsTheCallers: the runtime relaxes its own timer slack (see internal/nsexec), but the
// container's program and hooks get the slack of whoever ran the runtime: here a distinctive value
// set on the thread that starts it.
func TestTimerSlackIsTheCallers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const slack = 123457
	hookOut := filepath.Join(t.TempDir(), "hook-slack")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, slack, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	r := e.runOut([]string{"cat", "/proc/self/timerslack_ns"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{
			Path: "/bin/sh", Args: []string{"sh", "-c", "cat /proc/self/timerslack_ns > " + hookOut},
		}}}
	})
	// Back to the default for whatever runs on this thread next.
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	want := fmt.Sprint(slack)
	if got := strings.TrimSpace(r.stdout); got != want {
		t.Errorf("container's timer slack %q, want the caller's %q", got, want)
	}
	b, err := os.ReadFile(hookOut)
	if err != nil {
		t.Fatalf("hook output: %v", err)
	}
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("hook's timer slack %q, want the caller's %q", got, want)
	}
}
