// Command checker looks at a container from the inside and prints what it finds, one fact per line,
// for the runtime's integration tests. It is compiled statically by the tests and copied into the
// rootfs; it never changes anything except where a subcommand says it tries to.
//
// The Go runtime must not hold cgroup files open (it does by default, to follow CPU limits): the
// fds command would report them.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: checker <command> [args]")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "id":
		groups, _ := unix.Getgroups()
		fmt.Printf("uid=%d gid=%d euid=%d groups=%v\n", unix.Getuid(), unix.Getgid(), unix.Geteuid(), groups)
	case "status":
		// Capabilities, no_new_privs, seccomp mode, as the kernel reports them.
		b, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(b), "\n") {
			for _, k := range []string{"Cap", "NoNewPrivs", "Seccomp", "Uid", "Gid", "Groups"} {
				if strings.HasPrefix(l, k) {
					fmt.Println(strings.Join(strings.Fields(l), " "))
				}
			}
		}
	case "fds":
		// Every open descriptor but the one used to list them.
		entries, _ := os.ReadDir("/proc/self/fd")
		for _, e := range entries {
			t, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fmt.Printf("%s %s\n", e.Name(), t)
		}
	case "cwd":
		wd, err := os.Getwd()
		fmt.Println(wd, err)
	case "env":
		for _, e := range os.Environ() {
			fmt.Println(e)
		}
	case "rlimit":
		var r unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &r)
		fmt.Printf("nofile %d %d\n", r.Cur, r.Max)
	case "oom":
		b, _ := os.ReadFile("/proc/self/oom_score_adj")
		fmt.Print("oom_score_adj ", string(b))
	case "write":
		// write PATH: try to open PATH for writing and report the result.
		fd, err := unix.Open(args[0], unix.O_WRONLY, 0)
		if err == nil {
			unix.Close(fd)
		}
		fmt.Println("write", args[0], errText(err))
	case "umount":
		fmt.Println("umount", args[0], errText(unix.Unmount(args[0], unix.MNT_DETACH)))
	case "remount-rw":
		fmt.Println("remount-rw", args[0], errText(unix.Mount("", args[0], "", unix.MS_REMOUNT|unix.MS_BIND, "")))
	case "mount-over":
		fmt.Println("mount-over", args[0], errText(unix.Mount("tmpfs", args[0], "tmpfs", 0, "")))
	case "read":
		b, err := os.ReadFile(args[0])
		fmt.Printf("read %s %s %q\n", args[0], errText(err), strings.TrimSpace(string(b)))
	case "exe-attack":
		// exe-attack PID: hold /proc/PID/exe, wait for PID to exec something else or exit, then try to
		// open the file it was running for writing (CVE-2019-5736).
		pid, _ := strconv.Atoi(args[0])
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/exe", pid), unix.O_PATH, 0)
		if err != nil {
			fmt.Println("exe-attack open", errText(err))
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			w, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_WRONLY, 0)
			if err == unix.ETXTBSY && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			if err == nil {
				unix.Close(w)
			}
			fmt.Println("exe-attack write", errText(err))
			return
		}
	case "uname":
		var u unix.Utsname
		err := unix.Uname(&u)
		fmt.Println("uname", unix.ByteSliceToString(u.Machine[:]), unix.ByteSliceToString(u.Nodename[:]), unix.ByteSliceToString(u.Domainname[:]), errText(err))
	case "sched":
		policy, _, errno := unix.Syscall(unix.SYS_SCHED_GETSCHEDULER, 0, 0, 0)
		prio, _, _ := unix.Syscall(unix.SYS_IOPRIO_GET, 1, 0, 0)
		nice, _ := unix.Getpriority(unix.PRIO_PROCESS, 0)
		fmt.Printf("policy %d errno %d ioprio class %d level %d nice %d\n", policy, errno, prio>>13, prio&7, 20-nice)
	case "affinity":
		var set unix.CPUSet
		_ = unix.SchedGetaffinity(0, &set)
		var cpus []int
		for i := 0; i < 64; i++ {
			if set.IsSet(i) {
				cpus = append(cpus, i)
			}
		}
		fmt.Println("affinity", cpus)
	case "stat":
		var st unix.Stat_t
		err := unix.Stat(args[0], &st)
		fmt.Printf("stat %s uid %d gid %d mode %o %s\n", args[0], st.Uid, st.Gid, st.Mode&0o7777, errText(err))
	case "umask":
		old := unix.Umask(0)
		fmt.Printf("umask %04o\n", old)
	case "clocks":
		var mono, boot unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
		_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
		fmt.Printf("monotonic %d boottime %d\n", mono.Sec, boot.Sec)
	case "sleep":
		d, _ := time.ParseDuration(args[0])
		time.Sleep(d)
	case "exit":
		n, _ := strconv.Atoi(args[0])
		os.Exit(n)
	case "sigwait":
		// Print the first signal number received (of TERM, INT, HUP, USR1), then exit 0.
		ch := make(chan os.Signal, 1)
		notify(ch)
		fmt.Println("ready")
		s := <-ch
		fmt.Println("signal", int(s.(unix.Signal)))
	default:
		fmt.Fprintf(os.Stderr, "checker: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	if errno, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(errno)
	}
	if pe, ok := err.(*os.PathError); ok {
		if errno, ok := pe.Err.(unix.Errno); ok {
			return unix.ErrnoName(errno)
		}
	}
	return err.Error()
}
