// The namespace half of a container process's bootstrap, run before the Go runtime starts.
//
// Joining a mount or user namespace needs a single-threaded process, and the Go runtime starts several
// threads before any Go code runs; so this constructor, which the C runtime calls before Go's own
// initialisation, does every setns/unshare while the process still has one thread. It is inert unless
// _BERTH_SYNC_FD names the runtime's sync socket.
//
// Protocol on the sync socket (frames are a 4-byte little-endian length and a body):
//   runtime -> here: one frame of text lines:
//     cgfd <fd> <path>        fork into the cgroup v2 directory at path below the directory descriptor fd
//                             with clone3(CLONE_INTO_CGROUP): moving a process afterwards would wait for
//                             an RCU grace period (milliseconds); the fork then always happens. The
//                             runtime starts this process before it makes the directory (it makes it
//                             while this process starts), so it passes an existing ancestor
//     join <type> <path>      setns into an existing namespace (user first, then in the given order)
//     unshare <flags>         unshare(2) these CLONE_NEW* flags (user first, with uid/gid maps written by the runtime)
//     timens <clock> <s> <ns> offsets for a new time namespace (monotonic or boottime)
//   here -> runtime: JSON frames
//     {"type":"usermap","pid":N}   after unshare(CLONE_NEWUSER): the runtime writes the maps and answers with any frame
//     {"type":"pid","pid":N}       the pid (in the runtime's pid namespace) of the process that goes on to run Go
//     {"type":"error","error":"..."} and exit 1
// When the pid or time namespace changes, those apply only to children, so the process forks once: the child
// (made a sibling of this process with CLONE_PARENT, so the runtime is its parent) continues into Go, and
// this process reports the child's pid and exits.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

// struct clone_args as of Linux 5.7 (CLONE_ARGS_SIZE_VER2).
struct berth_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define MAX_JOIN 16
#define MAX_BOOTSTRAP (64 * 1024)

static int sync_fd = -1;

static void write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		buf += w;
		n -= (size_t)w;
	}
}

static void send_frame(const char *body)
{
	size_t n = strlen(body);
	unsigned char hdr[4] = {n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >> 24) & 0xff};
	char buf[4 + 4096];
	if (n > sizeof(buf) - 4)
		n = sizeof(buf) - 4;
	memcpy(buf, hdr, 4);
	memcpy(buf + 4, body, n);
	write_all(sync_fd, buf, n + 4);
}

static void json_escape(char *dst, size_t cap, const char *src)
{
	size_t j = 0;
	for (; *src && j + 7 < cap; src++) {
		unsigned char c = (unsigned char)*src;
		if (c == '"' || c == '\\') {
			dst[j++] = '\\';
			dst[j++] = (char)c;
		} else if (c < 0x20) {
			j += (size_t)snprintf(dst + j, cap - j, "\\u%04x", c);
		} else {
			dst[j++] = (char)c;
		}
	}
	dst[j] = '\0';
}

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	char msg[1024], esc[2048], body[2200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_escape(esc, sizeof(esc), msg);
	snprintf(body, sizeof(body), "{\"type\":\"error\",\"error\":\"%s\"}", esc);
	send_frame(body);
	_exit(1);
}

static void read_full(char *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = read(sync_fd, buf, n);
		if (r < 0 && errno == EINTR)
			continue;
		// EOF means the runtime died: there is nobody to report to.
		if (r <= 0)
			_exit(1);
		buf += r;
		n -= (size_t)r;
	}
}

// read_frame reads one frame into buf (NUL-terminated) and returns its length.
static size_t read_frame(char *buf, size_t cap)
{
	unsigned char hdr[4];
	read_full((char *)hdr, 4);
	size_t n = (size_t)hdr[0] | ((size_t)hdr[1] << 8) | ((size_t)hdr[2] << 16) | ((size_t)hdr[3] << 24);
	if (n >= cap)
		fail("nsexec: bootstrap message of %zu bytes is too large", n);
	read_full(buf, n);
	buf[n] = '\0';
	return n;
}

struct join {
	char type[16];
	char path[4096];
	int fd;
};

static int ns_flag(const char *type)
{
	static const struct {
		const char *name;
		int flag;
	} t[] = {
		{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},	    {"pid", CLONE_NEWPID},   {"net", CLONE_NEWNET},
		{"ipc", CLONE_NEWIPC},	 {"uts", CLONE_NEWUTS},	    {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, type) == 0)
			return t[i].flag;
	return 0;
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	size_t n = strlen(data);
	if (write(fd, data, n) != (ssize_t)n)
		fail("write %s: %s", path, strerror(errno));
	close(fd);
}

static void wait_for_runtime(void)
{
	char ack[256];
	read_frame(ack, sizeof(ack));
}

// The Go runtime's monitor thread (sysmon) sleeps 20 microseconds at a time while the process is
// busy, and the default 50-microsecond timer slack lets it wake some 80 times in a container start:
// each wake-up of an idle virtual CPU is a VM exit. A millisecond of slack, set before the runtime
// starts any thread (threads inherit it), cuts that tenfold. The host's value is kept so that
// every program the runtime starts (the container's, hooks) gets it back: see timerslack.go.
#define RELAXED_TIMER_SLACK_NS 1000000
unsigned long berth_host_timer_slack;
int berth_timer_slack_relaxed;

static void relax_timer_slack(void)
{
	int cur = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	if (cur <= 0 || cur >= RELAXED_TIMER_SLACK_NS)
		return;
	berth_host_timer_slack = (unsigned long)cur;
	if (prctl(PR_SET_TIMERSLACK, RELAXED_TIMER_SLACK_NS, 0, 0, 0) == 0)
		berth_timer_slack_relaxed = 1;
}

__attribute__((constructor)) static void berth_nsexec(void)
{
	relax_timer_slack();
	const char *env = getenv("_BERTH_SYNC_FD");
	if (env == NULL || *env == '\0')
		return;
	char *end;
	long fd = strtol(env, &end, 10);
	struct stat st;
	// Anything but our socket means this binary was started by someone else with a stray variable.
	if (*end != '\0' || fd < 0 || fd > 1 << 20 || fstat((int)fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return;
	sync_fd = (int)fd;

	// Until the container process execs, nothing in the container may ptrace us or open our /proc files.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail("prctl(PR_SET_DUMPABLE): %s", strerror(errno));

	static char boot[MAX_BOOTSTRAP];
	read_frame(boot, sizeof(boot));

	static struct join joins[MAX_JOIN];
	int njoin = 0, unshare_flags = 0, cgfd = -1;
	char timens[512] = "";

	for (char *line = strtok(boot, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (strncmp(line, "join ", 5) == 0) {
			if (njoin == MAX_JOIN)
				fail("nsexec: too many namespaces to join");
			struct join *j = &joins[njoin];
			char *sp = strchr(line + 5, ' ');
			if (sp == NULL || (size_t)(sp - (line + 5)) >= sizeof(j->type) || strlen(sp + 1) >= sizeof(j->path))
				fail("nsexec: malformed line %s", line);
			memcpy(j->type, line + 5, (size_t)(sp - (line + 5)));
			j->type[sp - (line + 5)] = '\0';
			strcpy(j->path, sp + 1);
			if (ns_flag(j->type) == 0)
				fail("nsexec: unknown namespace type %s", j->type);
			njoin++;
		} else if (strncmp(line, "cgfd ", 5) == 0) {
			char *rel;
			long dirfd = strtol(line + 5, &rel, 10);
			if (*rel != ' ' || rel[1] == '\0' || dirfd < 0 || dirfd > 1 << 20)
				fail("nsexec: malformed line %s", line);
			rel++;
			// Opened now, with the runtime's credentials: the namespaces joined below may take away
			// the right to reach the host's cgroupfs.
			cgfd = openat((int)dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (cgfd < 0)
				fail("open cgroup %s: %s", rel, strerror(errno));
			close((int)dirfd);
		} else if (strncmp(line, "unshare ", 8) == 0) {
			unshare_flags = (int)strtol(line + 8, NULL, 10);
		} else if (strncmp(line, "timens ", 7) == 0) {
			if (strlen(timens) + strlen(line + 7) + 2 >= sizeof(timens))
				fail("nsexec: too many time offsets");
			strcat(timens, line + 7);
			strcat(timens, "\n");
		} else {
			fail("nsexec: unknown bootstrap line %s", line);
		}
	}

	// Open every path before joining any namespace: after joining the user or mount namespace the paths
	// may no longer resolve, or no longer be ours to open.
	for (int i = 0; i < njoin; i++) {
		joins[i].fd = open(joins[i].path, O_RDONLY | O_CLOEXEC);
		if (joins[i].fd < 0)
			fail("open namespace %s %s: %s", joins[i].type, joins[i].path, strerror(errno));
	}
	// The user namespace first, so that the others are joined with its credentials.
	for (int i = 0; i < njoin; i++) {
		if (ns_flag(joins[i].type) != CLONE_NEWUSER)
			continue;
		if (setns(joins[i].fd, CLONE_NEWUSER) < 0)
			fail("setns user %s: %s", joins[i].path, strerror(errno));
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			fail("become root in joined user namespace %s: %s", joins[i].path, strerror(errno));
	}
	int forks = 0;
	for (int i = 0; i < njoin; i++) {
		int flag = ns_flag(joins[i].type);
		if (flag == CLONE_NEWUSER)
			continue;
		if (setns(joins[i].fd, flag) < 0)
			fail("setns %s %s: %s", joins[i].type, joins[i].path, strerror(errno));
		if (flag == CLONE_NEWPID)
			forks = 1;
	}
	for (int i = 0; i < njoin; i++)
		close(joins[i].fd);

	if (unshare_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			fail("unshare user namespace: %s", strerror(errno));
		// An unprivileged runtime (rootless) writes the maps: /proc/<pid> of a non-dumpable process
		// belongs to root, so this process is dumpable for the moment it takes. Nothing runs in
		// the container yet.
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			fail("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
		char body[128];
		snprintf(body, sizeof(body), "{\"type\":\"usermap\",\"pid\":%d}", (int)getpid());
		send_frame(body);
		wait_for_runtime();
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			fail("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
		if (setresgid(0, 0, 0) < 0)
			fail("setresgid(0) in the new user namespace (is gid 0 mapped in linux.gidMappings?): %s",
			     strerror(errno));
		if (setresuid(0, 0, 0) < 0)
			fail("setresuid(0) in the new user namespace (is uid 0 mapped in linux.uidMappings?): %s",
			     strerror(errno));
	}
	int rest = unshare_flags & ~CLONE_NEWUSER;
	if (rest != 0 && unshare(rest) < 0)
		fail("unshare namespaces 0x%x: %s", rest, strerror(errno));
	if (rest & (CLONE_NEWPID | CLONE_NEWTIME))
		forks = 1;
	if (cgfd >= 0)
		forks = 1;
	if (timens[0] != '\0')
		write_file("/proc/self/timens_offsets", timens);

	if (!forks) {
		char body[64];
		snprintf(body, sizeof(body), "{\"type\":\"pid\",\"pid\":%d}", (int)getpid());
		send_frame(body);
		return;
	}

	// The child must not speak on the socket before our pid frame is out: it waits for this pipe to close.
	int gate[2];
	if (pipe2(gate, O_CLOEXEC) < 0)
		fail("pipe: %s", strerror(errno));
	long child;
	if (cgfd >= 0) {
		struct berth_clone_args args;
		memset(&args, 0, sizeof(args));
		// With CLONE_PARENT, clone3 wants no exit signal: the child inherits this process's (SIGCHLD).
		args.flags = CLONE_PARENT | CLONE_INTO_CGROUP;
		args.exit_signal = 0;
		args.cgroup = (uint64_t)cgfd;
		child = syscall(SYS_clone3, &args, sizeof(args));
		if (child < 0)
			fail("clone3 into cgroup: %s", strerror(errno));
	} else {
		child = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
		if (child < 0)
			fail("clone: %s", strerror(errno));
	}
	if (child == 0) {
		char c;
		close(gate[1]);
		if (cgfd >= 0)
			close(cgfd);
		while (read(gate[0], &c, 1) < 0 && errno == EINTR)
			;
		close(gate[0]);
		return;
	}
	char body[64];
	snprintf(body, sizeof(body), "{\"type\":\"pid\",\"pid\":%ld}", child);
	send_frame(body);
	_exit(0);
}
