// The namespace half of a container process's bootstrap, run before the Go runtime starts.
//
// Joining a mount or user namespace needs a single-threaded process, and the Go runtime starts several
// threads before any Go code runs; so this constructor, which the C runtime calls before Go's own
// initialisation, does every setns/unshare while the process still has one thread. It is inert unless
// _BERTH_SYNC_FD names the runtime's sync socket.
//
// Protocol on the sync socket (frames are a 4-byte little-endian length and a body):
//   runtime -> here: two frames of text lines. The first says which namespaces:
//     join <type> <path>      setns into an existing namespace (user first, then in the given order)
//     unshare <flags>         unshare(2) these CLONE_NEW* flags (user first, with uid/gid maps written by the runtime)
//     timens <clock> <s> <ns> offsets for a new time namespace (monotonic or boottime)
//   The second (which may be empty) comes once the runtime has recorded the container and made its
//   cgroup v2 directory; the process enters its namespaces meanwhile, and waits for it before it forks:
//     cgfd <path>             fork into the cgroup v2 directory at path below the directory whose descriptor
//                             comes with the frame (SCM_RIGHTS), with clone3(CLONE_INTO_CGROUP): moving a
//                             process afterwards would wait for an RCU grace period (milliseconds); the
//                             fork then always happens
//   here -> runtime: JSON frames
//     {"type":"usermap","pid":N}   after unshare(CLONE_NEWUSER): the runtime writes the maps and answers with any frame
//     {"type":"pid","pid":N}       the pid (in the runtime's pid namespace) of the process that goes on to run Go
//     {"type":"error","error":"..."} and exit 1
// When the pid or time namespace changes, those apply only to children, so the process forks once: the child
// (made a sibling of this process with CLONE_PARENT, so the runtime is its parent) continues into Go, and
// this process reports the child's pid, makes a new network namespace for it if one is wanted (see
// hand_over_netns) and exits.
//
// Starting ahead (prespawn): when the runtime half itself starts as root for create, run or exec, this
// constructor starts the container process at once, from the sealed binary (see internal/sealedexe),
// before its own Go runtime starts: the exec of the binary then runs on the other CPU while the runtime
// half initialises and reads the config, instead of after it. That process (_BERTH_PRESPAWNED=1) waits
// for one more frame before the bootstrap:
//   runtime -> here: a frame of text lines, with SCM_RIGHTS on its first bytes:
//     hole <n>                the descriptors received go to 0, 1, 2, ... in order, skipping n (where
//                             the sync socket would be had the process been started with them)
//     dir <path>              the working directory to start in
// Everything else this process inherited is closed. If the runtime half does not need it, it closes
// the socket, and this process exits. For exec, the runtime half's constructor may send the first
// three frames itself, from the container's state; for create and run, from the bundle's config
// (early.c).
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
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

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_execveat
#define SYS_execveat 322
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#define BERTH_MOUNT_ATTR_RDONLY 0x00000001
#define BERTH_MOUNT_ATTR_NOSUID 0x00000002
#define BERTH_MOUNT_ATTR_NODEV 0x00000004

struct berth_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define MAX_JOIN 16
#define MAX_BOOTSTRAP (64 * 1024)
// The descriptors a prespawned process can be given in one frame (the kernel's SCM_MAX_FD is 253).
#define MAX_SPAWN_FDS 250
// Both ends of the prespawn socket sit at or above this number, clear of the descriptors the caller
// passes from 3 up (--preserve-fds) and of the positions the process is given.
#define PRESPAWN_FD_MIN 200

static int sync_fd = -1;

// ctrace prints a phase of the constructor as the runtime's BERTH_TRACE=1 timeline does (trace.go).
static void ctrace(const char *what)
{
	static int on = -1;
	if (on < 0)
		on = getenv("BERTH_TRACE") != NULL;
	if (!on)
		return;
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	dprintf(2, "TRACE %d c-%s %lld\n", (int)getpid(), what, (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000);
}

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

// recv_header reads a frame's 4-byte header with recvmsg and returns its length; descriptors that
// came with it (SCM_RIGHTS) are stored in fds, up to max, and counted in *nfds. EOF exits: the
// runtime is gone (or, before the first frame of a process started ahead, did not need it).
static size_t recv_header(int *fds, int max, int *nfds)
{
	unsigned char hdr[4];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MAX_SPAWN_FDS)];
	} control;
	struct iovec iov = {.iov_base = hdr, .iov_len = sizeof(hdr)};
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	ssize_t r;
	do
		r = recvmsg(sync_fd, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)sizeof(hdr))
		_exit(r == 0 ? 0 : 1);
	*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int got[MAX_SPAWN_FDS];
		memcpy(got, CMSG_DATA(c), (size_t)n * sizeof(int));
		for (int i = 0; i < n; i++) {
			if (*nfds < max)
				fds[(*nfds)++] = got[i];
			else
				close(got[i]);
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		fail("nsexec: too many descriptors");
	return (size_t)hdr[0] | ((size_t)hdr[1] << 8) | ((size_t)hdr[2] << 16) | ((size_t)hdr[3] << 24);
}

// read_cgroup_frame reads the bootstrap's second frame and returns the cgroup v2 directory to fork
// into, or -1. The frame carries a descriptor of it, or of an ancestor ("cgfd <path below>").
static int read_cgroup_frame(void)
{
	char buf[4200];
	int dirfd = -1, nfds = 0;
	size_t n = recv_header(&dirfd, 1, &nfds);
	if (n >= sizeof(buf))
		fail("nsexec: cgroup frame of %zu bytes is too large", n);
	read_full(buf, n);
	buf[n] = '\0';
	if (buf[0] == '\0') {
		if (nfds > 0)
			close(dirfd);
		return -1;
	}
	char *nl = strchr(buf, '\n');
	if (nl != NULL)
		*nl = '\0';
	if (strncmp(buf, "cgfd ", 5) != 0 || buf[5] == '\0' || nfds != 1)
		fail("nsexec: malformed cgroup frame %s", buf);
	const char *rel = buf + 5;
	// Relative to a descriptor of the host's cgroupfs: the mount namespace entered meanwhile does
	// not change what it reaches.
	int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fail("open cgroup %s: %s", rel, strerror(errno));
	close(dirfd);
	return fd;
}

// In the process that goes on into Go, a seqpacket socket on which the process that forked it sends a
// descriptor of the network namespace it made for it, or the error that kept it from making one
// (-1: no namespace to wait for). The Go side enters it first thing (internal/runtime).
int berth_late_netns_sock = -1;

// berth_send_fds sends data (len bytes, in one message) with up to 64 descriptors attached
// (SCM_RIGHTS); it returns 0 when all of it went. early.c frames its messages with it too.
int berth_send_fds(int sock, const void *data, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 64)];
	} control;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr m;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (nfds > 0) {
		if (nfds > 64)
			return -1;
		m.msg_control = control.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	ssize_t w;
	do
		w = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w == (ssize_t)len ? 0 : -1;
}

// hand_over_netns makes a new network namespace and sends the forked process a descriptor of it.
static void hand_over_netns(int sock)
{
	char msg[256] = "ok";
	int ns = -1;
	// The namespace is needed only once the Go runtime has started over there, which takes longer:
	// on a busy machine that start goes first. The lowest nice value, not SCHED_IDLE: an idle-class
	// task may wait for as long as the CPUs are busy, and the container's start with it.
	setpriority(PRIO_PROCESS, 0, 19);
	if (unshare(CLONE_NEWNET) < 0)
		snprintf(msg, sizeof(msg), "unshare network namespace: %s", strerror(errno));
	else if ((ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		snprintf(msg, sizeof(msg), "open the new network namespace: %s", strerror(errno));
	ctrace("net-unshared");
	// If this fails the process never gets a namespace: it reads EOF once this process exits.
	berth_send_fds(sock, msg, strlen(msg), &ns, ns >= 0 ? 1 : 0);
}

// early.c
void berth_early_exec(int sock, const char *root, const char *id, int preserve);
void berth_early_create(int sock, const char *root, const char *id, int preserve, const char *bundle);

// In the runtime half, the process started ahead, and the runtime's end of its socket (-1: none); and
// the number of the process's end in the process.
int berth_prespawn_pid = -1;
int berth_prespawn_fd = -1;
int berth_prespawn_child_fd = -1;

// cmdline is what the constructor reads of the runtime half's command line.
struct cmdline {
	char cmd[16];
	char root[4096];
	int systemd;
	// The container, the --preserve-fds count, the bundle (create, run), and whether every option
	// was understood.
	char id[1100];
	int preserve;
	char bundle[4096];
	int args_ok;
};

static int one_of(const char *name, const char *const *names)
{
	for (; *names != NULL; names++)
		if (strcmp(name, *names) == 0)
			return 1;
	return 0;
}

// parse_args reads a command's options, as cmd/berth-runtime defines them, up to the container id.
static void parse_args(char *arg, char *end, struct cmdline *c, const char *const *with_value, const char *const *booleans)
{
	strcpy(c->bundle, ".");
	while (arg < end && arg[0] == '-') {
		if (strcmp(arg, "--") == 0) {
			arg += strlen(arg) + 1;
			break;
		}
		char name[64];
		const char *n = arg + (arg[1] == '-' ? 2 : 1);
		const char *eq = strchr(n, '=');
		size_t len = eq != NULL ? (size_t)(eq - n) : strlen(n);
		if (len >= sizeof(name))
			return;
		memcpy(name, n, len);
		name[len] = '\0';
		const char *value = NULL;
		arg += strlen(arg) + 1;
		if (one_of(name, with_value)) {
			if (eq != NULL) {
				value = eq + 1;
			} else {
				if (arg >= end)
					return;
				value = arg;
				arg += strlen(arg) + 1;
			}
		} else if (!one_of(name, booleans)) {
			return;
		}
		if (strcmp(name, "preserve-fds") == 0) {
			char *e;
			long v = strtol(value, &e, 10);
			if (*value == '\0' || *e != '\0' || v < 0 || v > 60)
				return;
			c->preserve = (int)v;
		} else if (strcmp(name, "bundle") == 0 || strcmp(name, "b") == 0) {
			if (strlen(value) >= sizeof(c->bundle))
				return;
			strcpy(c->bundle, value);
		}
	}
	if (arg >= end || strlen(arg) >= sizeof(c->id))
		return;
	strcpy(c->id, arg);
	c->args_ok = 1;
}

// parse_cmdline reads the command (and for exec its arguments). Global options may come first, as
// runc spells them; anything unexpected only means no process starts ahead (or one starts that the
// runtime half then discards).
static int parse_cmdline(struct cmdline *c)
{
	static char buf[16384];
	memset(c, 0, sizeof(*c));
	strcpy(c->root, "/run/berth-runtime");
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end = buf + n, *arg = buf + strlen(buf) + 1; // skip argv[0]
	while (arg < end) {
		if (strcmp(arg, "--") == 0) {
			arg += strlen(arg) + 1;
			break;
		}
		if (arg[0] != '-')
			break;
		const char *name = arg + (arg[1] == '-' ? 2 : 1);
		int is_root = strncmp(name, "root", 4) == 0 && (name[4] == '\0' || name[4] == '=');
		int takes_value = strchr(name, '=') == NULL &&
				  (strcmp(name, "root") == 0 || strcmp(name, "log") == 0 || strcmp(name, "log-format") == 0 ||
				   strcmp(name, "rootless") == 0 || strcmp(name, "criu") == 0);
		const char *value = is_root && name[4] == '=' ? name + 5 : NULL;
		arg += strlen(arg) + 1;
		if (takes_value && arg < end) {
			value = arg;
			arg += strlen(arg) + 1;
		}
		if (is_root && value != NULL && strlen(value) < sizeof(c->root))
			strcpy(c->root, value);
		if (strncmp(name, "systemd-cgroup", 14) == 0)
			c->systemd = 1;
	}
	if (arg >= end || strlen(arg) >= sizeof(c->cmd))
		return 0;
	strcpy(c->cmd, arg);
	static const char *const exec_values[] = {"console-socket", "pid-file", "preserve-fds", "process", "p", "cwd",
						  "user", "u", "apparmor", "process-label", "env", "e", "cap", "c",
						  "additional-gids", "g", NULL};
	static const char *const exec_booleans[] = {"tty", "t", "detach", "d", "no-new-privs", "ignore-paused", NULL};
	static const char *const create_values[] = {"bundle", "b", "console-socket", "pid-file", "preserve-fds", NULL};
	static const char *const create_booleans[] = {"no-pivot", "no-new-keyring", NULL};
	static const char *const run_booleans[] = {"no-pivot", "no-new-keyring", "detach", "d", "keep", "no-subreaper", NULL};
	char *rest = arg + strlen(arg) + 1;
	if (strcmp(c->cmd, "exec") == 0)
		parse_args(rest, end, c, exec_values, exec_booleans);
	else if (strcmp(c->cmd, "create") == 0)
		parse_args(rest, end, c, create_values, create_booleans);
	else if (strcmp(c->cmd, "run") == 0)
		parse_args(rest, end, c, create_values, run_booleans);
	return strcmp(c->cmd, "create") == 0 || strcmp(c->cmd, "run") == 0 || strcmp(c->cmd, "exec") == 0;
}

// sealed_exe opens this binary through a read-only clone of its directory's mount, detached from
// every namespace: what internal/sealedexe does for the runtime half's own starts (CVE-2019-5736).
static int sealed_exe(void)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL || slash[1] == '\0')
		return -1;
	char dir[4096];
	if (slash == self) {
		strcpy(dir, "/");
	} else {
		memcpy(dir, self, (size_t)(slash - self));
		dir[slash - self] = '\0';
	}
	int tree = (int)syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return -1;
	struct berth_mount_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.attr_set = BERTH_MOUNT_ATTR_RDONLY | BERTH_MOUNT_ATTR_NODEV | BERTH_MOUNT_ATTR_NOSUID;
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		close(tree);
		return -1;
	}
	int exe = openat(tree, slash + 1, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	close(tree);
	return exe;
}

// prespawn starts the container process ahead (see the top of this file). Any failure leaves the
// runtime half to start it itself.
static void prespawn(void)
{
	static struct cmdline cl;
	if (geteuid() != 0 || getenv("BERTH_NO_PRESPAWN") != NULL || !parse_cmdline(&cl))
		return;
	int exe = sealed_exe();
	if (exe < 0)
		return;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		close(exe);
		return;
	}
	int ours = fcntl(sv[0], F_DUPFD_CLOEXEC, PRESPAWN_FD_MIN);
	int theirs = fcntl(sv[1], F_DUPFD_CLOEXEC, PRESPAWN_FD_MIN);
	close(sv[0]);
	close(sv[1]);
	if (ours < 0 || theirs < 0) {
		if (ours >= 0)
			close(ours);
		if (theirs >= 0)
			close(theirs);
		close(exe);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		// The program the container runs in the end gets the caller's timer slack back from the
		// constructor of the binary exec'd here, which records the value it finds.
		if (berth_timer_slack_relaxed)
			prctl(PR_SET_TIMERSLACK, berth_host_timer_slack, 0, 0, 0);
		if (fcntl(theirs, F_SETFD, 0) < 0)
			_exit(127);
		char fdenv[64];
		snprintf(fdenv, sizeof(fdenv), "_BERTH_SYNC_FD=%d", theirs);
		char *envp[5];
		int k = 0;
		envp[k++] = fdenv;
		envp[k++] = "_BERTH_PRESPAWNED=1";
		// One P: the container half works sequentially, and its execve must stop every thread.
		envp[k++] = "GOMAXPROCS=1";
		if (getenv("BERTH_TRACE") != NULL)
			envp[k++] = "BERTH_TRACE=1";
		envp[k] = NULL;
		char *argv[] = {"berth-runtime", "init", NULL};
		syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
		_exit(127);
	}
	close(exe);
	close(theirs);
	if (pid < 0) {
		close(ours);
		return;
	}
	berth_prespawn_pid = (int)pid;
	berth_prespawn_fd = ours;
	berth_prespawn_child_fd = theirs;
	if (cl.args_ok && strcmp(cl.cmd, "exec") == 0 && getenv("BERTH_NO_EARLY_EXEC") == NULL)
		berth_early_exec(ours, cl.root, cl.id, cl.preserve);
	else if (cl.args_ok && !cl.systemd && getenv("BERTH_NO_EARLY_RUN") == NULL)
		berth_early_create(ours, cl.root, cl.id, cl.preserve, cl.bundle);
}

// receive_spawn takes the descriptors and working directory of a prespawned process.
static void receive_spawn(void)
{
	int fds[MAX_SPAWN_FDS], nfds = 0;
	size_t n = recv_header(fds, MAX_SPAWN_FDS, &nfds);
	static char body[8192];
	if (n >= sizeof(body))
		fail("nsexec: spawn message of %zu bytes is too large", n);
	read_full(body, n);
	body[n] = '\0';
	int hole = -1;
	const char *dir = NULL;
	for (char *line = strtok(body, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (strncmp(line, "hole ", 5) == 0)
			hole = (int)strtol(line + 5, NULL, 10);
		else if (strncmp(line, "dir ", 4) == 0)
			dir = line + 4;
		else
			fail("nsexec: unknown spawn line %s", line);
	}
	int total = nfds + (hole >= 0 && hole <= nfds ? 1 : 0);
	if (total >= sync_fd)
		fail("nsexec: %d descriptors do not fit below the sync socket (%d)", total, sync_fd);
	// Above every position first, so that placing one cannot close another still to be placed.
	for (int i = 0; i < nfds; i++) {
		int hi = fcntl(fds[i], F_DUPFD_CLOEXEC, sync_fd + 1);
		if (hi < 0)
			fail("nsexec: dup: %s", strerror(errno));
		close(fds[i]);
		fds[i] = hi;
	}
	for (int i = 0, pos = 0; i < nfds; i++, pos++) {
		if (pos == hole)
			pos++;
		if (dup2(fds[i], pos) < 0)
			fail("nsexec: dup2: %s", strerror(errno));
	}
	if (hole >= 0 && hole < total)
		close(hole);
	if (sync_fd > total)
		syscall(SYS_close_range, (unsigned)total, (unsigned)sync_fd - 1, 0);
	syscall(SYS_close_range, (unsigned)sync_fd + 1, ~0U, 0);
	if (dir != NULL && chdir(dir) < 0)
		fail("chdir %s: %s", dir, strerror(errno));
}

__attribute__((constructor)) static void berth_nsexec(void)
{
	relax_timer_slack();
	const char *env = getenv("_BERTH_SYNC_FD");
	if (env == NULL || *env == '\0') {
		prespawn();
		return;
	}
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
	ctrace("ctor");
	if (getenv("_BERTH_PRESPAWNED") != NULL)
		receive_spawn();
	ctrace("spawn-received");

	static char boot[MAX_BOOTSTRAP];
	read_frame(boot, sizeof(boot));
	ctrace("boot-received");

	static struct join joins[MAX_JOIN];
	int njoin = 0, unshare_flags = 0, cgfd = -1, have_cgroup_frame = 0;
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
		// The runtime sends the second frame before it answers the map request below.
		cgfd = read_cgroup_frame();
		have_cgroup_frame = 1;
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
	// A new network namespace takes most of a millisecond to make here. Unless it must belong to a
	// new user namespace, this process makes it after forking the process that goes on into Go,
	// while that one starts its runtime, and hands it over (see berth_late_netns_sock).
	int late_net = (rest & CLONE_NEWNET) && !(unshare_flags & CLONE_NEWUSER);
	if (late_net) {
		rest &= ~CLONE_NEWNET;
		forks = 1;
	}
	if (rest != 0 && unshare(rest) < 0)
		fail("unshare namespaces 0x%x: %s", rest, strerror(errno));
	if (rest & (CLONE_NEWPID | CLONE_NEWTIME))
		forks = 1;
	if (timens[0] != '\0')
		write_file("/proc/self/timens_offsets", timens);
	ctrace("unshared");
	if (!have_cgroup_frame)
		cgfd = read_cgroup_frame();
	ctrace("cgroup-received");
	if (cgfd >= 0)
		forks = 1;

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
	int netsock[2] = {-1, -1};
	if (late_net && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, netsock) < 0)
		fail("socketpair: %s", strerror(errno));
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
		if (late_net) {
			close(netsock[0]);
			berth_late_netns_sock = netsock[1];
		}
		while (read(gate[0], &c, 1) < 0 && errno == EINTR)
			;
		close(gate[0]);
		return;
	}
	char body[64];
	ctrace("forked");
	snprintf(body, sizeof(body), "{\"type\":\"pid\",\"pid\":%ld}", child);
	send_frame(body);
	close(gate[1]);
	if (late_net)
		hand_over_netns(netsock[0]);
	_exit(0);
}
