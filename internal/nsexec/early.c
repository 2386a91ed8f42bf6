// Joining an exec's namespaces ahead of the runtime half (see "prespawn" in nsexec.c).
//
// For `exec`, what the container process needs before it forks into the container is known from
// the command line and the container's state file alone: the namespaces of its init, the cgroup v2
// directory to fork into, stdio and the preserved descriptors. The runtime half's constructor reads
// them here and sends the process started ahead its first frames at once, so that it joins the
// container and forks while the runtime half is still starting its Go runtime; that fork then
// starts its own Go runtime at the same time. The runtime half checks, once it has read the state
// itself, that what was sent is what it would have sent (berth_early_*), and otherwise discards the
// process and starts another. Anything this code does not recognise means no early join.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// In the runtime half: 1 when the frames went out, -1 when sending failed midway (the process must
// be discarded), 0 when nothing was sent. What was sent, for the runtime half to compare.
int berth_early;
char berth_early_ns[8192];
char berth_early_cgroup[4096];
int berth_early_preserve;
int berth_early_pid;
unsigned long long berth_early_pidstart;

#define EARLY_MAX_NS 8
#define EARLY_STATE_MAX (64 * 1024)

struct scan {
	const char *p, *end;
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\t' || *s->p == '\r'))
		s->p++;
}

static int take(struct scan *s, char c)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return 1;
	}
	return 0;
}

// plain_string reads a string without escapes (all this code needs) into out.
static int plain_string(struct scan *s, char *out, size_t cap)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return 0;
	s->p++;
	size_t n = 0;
	while (s->p < s->end && *s->p != '"') {
		if (*s->p == '\\' || n + 1 >= cap)
			return 0;
		out[n++] = *s->p++;
	}
	if (s->p >= s->end)
		return 0;
	s->p++;
	out[n] = '\0';
	return 1;
}

static int skip_string(struct scan *s)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return 0;
	for (s->p++; s->p < s->end && *s->p != '"'; s->p++)
		if (*s->p == '\\')
			s->p++;
	if (s->p >= s->end)
		return 0;
	s->p++;
	return 1;
}

static int skip_value(struct scan *s)
{
	skip_ws(s);
	if (s->p >= s->end)
		return 0;
	if (*s->p == '"')
		return skip_string(s);
	if (*s->p == '{' || *s->p == '[') {
		int depth = 0;
		while (s->p < s->end) {
			char c = *s->p;
			if (c == '"') {
				if (!skip_string(s))
					return 0;
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if ((c == '}' || c == ']') && --depth == 0) {
				s->p++;
				return 1;
			}
			s->p++;
		}
		return 0;
	}
	const char *start = s->p;
	while (s->p < s->end && strchr(",}] \n\t\r", *s->p) == NULL)
		s->p++;
	return s->p > start;
}

static int number(struct scan *s, unsigned long long *v)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p < '0' || *s->p > '9')
		return 0;
	*v = 0;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		*v = *v * 10 + (unsigned long long)(*s->p++ - '0');
	return 1;
}

// ns_proc_name maps a runtime-spec namespace type to its name under /proc/<pid>/ns. A user
// namespace is not handled here (its cgroups are joined another way).
static const char *ns_proc_name(const char *type)
{
	static const char *const map[][2] = {{"pid", "pid"}, {"network", "net"}, {"ipc", "ipc"}, {"uts", "uts"},
					     {"mount", "mnt"}, {"cgroup", "cgroup"}, {"time", "time"}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], type) == 0)
			return map[i][1];
	return NULL;
}

struct state {
	unsigned long long pid, pid_start;
	char cgroup[4096];
	char types[EARLY_MAX_NS][16];
	int ntypes;
};

// parse_state finds pid, pidStart, the cgroup v2 directory and the namespaces' types in the
// state file (internal/runtime, state_codec.go), which puts them before the bulky fields.
static int parse_state(const char *buf, size_t n, struct state *st)
{
	struct scan s = {buf, buf + n};
	int have = 0;
	if (!take(&s, '{'))
		return 0;
	for (;;) {
		char key[64];
		if (!plain_string(&s, key, sizeof(key)) || !take(&s, ':'))
			return 0;
		if (strcmp(key, "pid") == 0) {
			if (!number(&s, &st->pid))
				return 0;
			have |= 1;
		} else if (strcmp(key, "pidStart") == 0) {
			if (!number(&s, &st->pid_start))
				return 0;
			have |= 2;
		} else if (strcmp(key, "cgroups") == 0) {
			if (!take(&s, '{'))
				return 0;
			if (!take(&s, '}')) {
				do {
					char k[64], v[4096];
					if (!plain_string(&s, k, sizeof(k)) || !take(&s, ':') || !plain_string(&s, v, sizeof(v)))
						return 0;
					if (strcmp(k, "unified") == 0 || k[0] == '\0')
						strcpy(st->cgroup, v);
				} while (take(&s, ','));
				if (!take(&s, '}'))
					return 0;
			}
			have |= 4;
		} else if (strcmp(key, "namespaces") == 0) {
			if (!take(&s, '['))
				return 0;
			if (!take(&s, ']')) {
				do {
					if (st->ntypes == EARLY_MAX_NS || !take(&s, '{'))
						return 0;
					st->types[st->ntypes][0] = '\0';
					do {
						char k[32];
						if (!plain_string(&s, k, sizeof(k)) || !take(&s, ':'))
							return 0;
						if (strcmp(k, "type") == 0) {
							if (!plain_string(&s, st->types[st->ntypes], sizeof(st->types[0])))
								return 0;
						} else if (!skip_value(&s)) {
							return 0;
						}
					} while (take(&s, ','));
					if (!take(&s, '}') || st->types[st->ntypes][0] == '\0')
						return 0;
					st->ntypes++;
				} while (take(&s, ','));
				if (!take(&s, ']'))
					return 0;
			}
			have |= 8;
		} else if (!skip_value(&s)) {
			return 0;
		}
		if (have == 15)
			return 1;
		if (!take(&s, ','))
			return 0;
	}
}

// start_time reads field 22 of /proc/<pid>/stat: with the pid, what identifies the init.
static unsigned long long start_time(unsigned long long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%llu/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	// Fields from 3 on follow ") ", each after a space: p ends on the one before field 22.
	for (int field = 3; field <= 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	return p == NULL ? 0 : strtoull(p + 1, NULL, 10);
}

static int send_frame_fds(int sock, const char *body, const int *fds, int nfds)
{
	size_t n = strlen(body);
	char buf[4 + 8192];
	if (n > sizeof(buf) - 4)
		return -1;
	buf[0] = (char)(n & 0xff);
	buf[1] = (char)((n >> 8) & 0xff);
	buf[2] = (char)((n >> 16) & 0xff);
	buf[3] = (char)((n >> 24) & 0xff);
	memcpy(buf + 4, body, n);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 64)];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = n + 4};
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		if (nfds > 64)
			return -1;
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	ssize_t w;
	do
		w = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w == (ssize_t)(n + 4) ? 0 : -1;
}

static int valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_+.-", c)))
			return 0;
	}
	return 1;
}

// berth_early_exec sends the process started ahead (on sock) the frames of an exec into container
// id under root: stdio and preserve descriptors, the namespaces to join, the cgroup to fork into.
void berth_early_exec(int sock, const char *root, const char *id, int preserve)
{
	if (!valid_id(id) || preserve < 0 || preserve > 60)
		return;
	char path[4096 + 1100];
	snprintf(path, sizeof(path), "%s/%s/state.json", root, id);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	static char buf[EARLY_STATE_MAX];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof(buf))
			break;
	}
	close(fd);
	static struct state st;
	memset(&st, 0, sizeof(st));
	if (!parse_state(buf, n, &st) || st.pid == 0 || st.pid > 1 << 22 || start_time(st.pid) != st.pid_start)
		return;

	static char ns[8192];
	ns[0] = '\0';
	for (int i = 0; i < st.ntypes; i++) {
		const char *name = ns_proc_name(st.types[i]);
		if (name == NULL)
			return;
		size_t len = strlen(ns);
		snprintf(ns + len, sizeof(ns) - len, "join %s /proc/%llu/ns/%s\n", name, st.pid, name);
	}
	int cgfd = -1;
	if (st.cgroup[0] != '\0' && (cgfd = open(st.cgroup, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return;

	// Stdio and the preserved descriptors at 0..2+preserve, the sync socket's place after them.
	int fds[64];
	int nfds = 3 + preserve;
	for (int i = 0; i < nfds; i++) {
		fds[i] = i;
		if (fcntl(i, F_GETFD) < 0) {
			if (cgfd >= 0)
				close(cgfd);
			return;
		}
	}
	char spawn[64];
	snprintf(spawn, sizeof(spawn), "hole %d\n", nfds);
	if (send_frame_fds(sock, spawn, fds, nfds) < 0) {
		berth_early = -1;
	} else if (send_frame_fds(sock, ns, NULL, 0) < 0) {
		berth_early = -1;
	} else if (send_frame_fds(sock, cgfd >= 0 ? "cgfd .\n" : "", &cgfd, cgfd >= 0 ? 1 : 0) < 0) {
		berth_early = -1;
	} else {
		berth_early = 1;
		strcpy(berth_early_ns, ns);
		strcpy(berth_early_cgroup, st.cgroup);
		berth_early_preserve = preserve;
		berth_early_pid = (int)st.pid;
		berth_early_pidstart = st.pid_start;
	}
	if (cgfd >= 0)
		close(cgfd);
}
