// Entering the container ahead of the runtime half (see "prespawn" in nsexec.c).
//
// What the container process needs before it forks into the container is known from the command
// line and a file: for exec the container's state (the namespaces of its init, its cgroup v2
// directory), for create and run the bundle's config (root, namespaces, cgroups path). The runtime
// half's constructor reads them here and sends the process started ahead its first frames at
// once (stdio and preserved descriptors, directory, namespaces, cgroup), so that it enters the
// container and forks while the runtime half is still starting its Go runtime; that fork then
// starts its own Go runtime at the same time. For create and run this also makes the state
// directory and the cgroup directories, listed in a marker until the state record exists. The
// runtime half checks, once it has read the state or config itself, that what was sent is what it
// would have sent (berth_early_*), and otherwise discards the process (and removes what was made)
// and starts another. Anything this code does not recognise means no early start.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

// In the runtime half: 1 when the frames went out, -1 when sending failed midway (the process must
// be discarded), 0 when nothing was sent. What was sent, for the runtime half to compare.
int berth_early;
int berth_early_kind; // 1: exec, 2: create or run
char berth_early_ns[8192];
char berth_early_cgroup[4096];
int berth_early_preserve;
int berth_early_pid;
unsigned long long berth_early_pidstart;
// create and run: the working directory sent (the rootfs), and the state directory this made (its
// marker lists the cgroup directories), which the runtime half adopts or removes.
char berth_early_dir[4096];
char berth_early_state[4096 + 1200];

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

// read_file reads path into buf (NUL-terminated) and returns its length, or -1. A file that does
// not fit is an error, unless partial is set: then buf holds its beginning.
static ssize_t read_file(const char *path, char *buf, size_t cap, int partial)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap - 1)
			break;
	}
	close(fd);
	buf[n] = '\0';
	if (n == cap - 1 && !partial)
		return -1;
	return (ssize_t)n;
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
	if (read_file(path, buf, sizeof(buf), 0) <= 0)
		return 0;
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	// Fields from 3 on follow ") ", each after a space: p ends on the one before field 22.
	for (int field = 3; field <= 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	return p == NULL ? 0 : strtoull(p + 1, NULL, 10);
}

int berth_send_fds(int sock, const void *data, size_t len, const int *fds, int nfds); // nsexec.c

// send_frame_fds sends one length-prefixed frame with descriptors attached.
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
	return berth_send_fds(sock, buf, n + 4, fds, nfds);
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
	// The fields wanted come first (state_codec.go): the beginning of a large state will do.
	static char buf[EARLY_STATE_MAX];
	ssize_t n = read_file(path, buf, sizeof(buf), 1);
	if (n < 0)
		return;
	static struct state st;
	memset(&st, 0, sizeof(st));
	if (!parse_state(buf, (size_t)n, &st) || st.pid == 0 || st.pid > 1 << 22 || start_time(st.pid) != st.pid_start)
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
		berth_early_kind = 1;
		strcpy(berth_early_ns, ns);
		strcpy(berth_early_cgroup, st.cgroup);
		berth_early_preserve = preserve;
		berth_early_pid = (int)st.pid;
		berth_early_pidstart = st.pid_start;
	}
	if (cgfd >= 0)
		close(cgfd);
}

// ---- create and run

// The marker a create started early leaves in its state directory until the state record is
// written: the cgroup v2 directory made before it, for delete --force to remove (internal/runtime).
#define EARLY_MARKER "early-cgroup"
#define CGROUP2_SUPER_MAGIC 0x63677270
#define CGROUP_SUPER_MAGIC 0x27e0eb
#define EARLY_MAX_V1 16
#define UNIFIED "/sys/fs/cgroup/unified"

struct config {
	char root[4096];
	int terminal;
	char cgroups_path[2048];
	int bad; // something this code does not handle: no early start
	char types[EARLY_MAX_NS][16];
	char paths[EARLY_MAX_NS][256];
	int ntypes;
};

static int boolean(struct scan *s, int *v)
{
	skip_ws(s);
	if ((size_t)(s->end - s->p) >= 4 && memcmp(s->p, "true", 4) == 0) {
		s->p += 4;
		*v = 1;
		return 1;
	}
	if ((size_t)(s->end - s->p) >= 5 && memcmp(s->p, "false", 5) == 0) {
		s->p += 5;
		*v = 0;
		return 1;
	}
	return 0;
}

// object walks an object's members, giving each key to field, which reads the value (or skips it).
static int object(struct scan *s, int (*field)(struct scan *, const char *, struct config *), struct config *cf)
{
	if (!take(s, '{'))
		return 0;
	if (take(s, '}'))
		return 1;
	do {
		char key[64];
		if (!plain_string(s, key, sizeof(key)) || !take(s, ':') || !field(s, key, cf))
			return 0;
	} while (take(s, ','));
	return take(s, '}');
}

static int root_field(struct scan *s, const char *key, struct config *cf)
{
	if (strcmp(key, "path") == 0)
		return plain_string(s, cf->root, sizeof(cf->root));
	return skip_value(s);
}

static int process_field(struct scan *s, const char *key, struct config *cf)
{
	if (strcmp(key, "terminal") == 0)
		return boolean(s, &cf->terminal);
	return skip_value(s);
}

static int namespace_field(struct scan *s, const char *key, struct config *cf)
{
	if (strcmp(key, "type") == 0)
		return plain_string(s, cf->types[cf->ntypes], sizeof(cf->types[0]));
	if (strcmp(key, "path") == 0)
		return plain_string(s, cf->paths[cf->ntypes], sizeof(cf->paths[0]));
	return skip_value(s);
}

static int linux_field(struct scan *s, const char *key, struct config *cf)
{
	if (strcmp(key, "cgroupsPath") == 0)
		return plain_string(s, cf->cgroups_path, sizeof(cf->cgroups_path));
	if (strcmp(key, "timeOffsets") == 0 || strcmp(key, "uidMappings") == 0 || strcmp(key, "gidMappings") == 0)
		cf->bad = 1;
	if (strcmp(key, "namespaces") == 0) {
		if (!take(s, '['))
			return 0;
		if (take(s, ']'))
			return 1;
		do {
			if (cf->ntypes == EARLY_MAX_NS)
				return 0;
			cf->types[cf->ntypes][0] = cf->paths[cf->ntypes][0] = '\0';
			if (!object(s, namespace_field, cf) || cf->types[cf->ntypes][0] == '\0')
				return 0;
			cf->ntypes++;
		} while (take(s, ','));
		return take(s, ']');
	}
	return skip_value(s);
}

static int top_field(struct scan *s, const char *key, struct config *cf)
{
	if (strcmp(key, "root") == 0)
		return object(s, root_field, cf);
	if (strcmp(key, "process") == 0)
		return object(s, process_field, cf);
	if (strcmp(key, "linux") == 0)
		return object(s, linux_field, cf);
	return skip_value(s);
}

// clean_cgroup_path accepts only what needs no cleaning: absolute, no empty, "." or ".." part.
static int clean_cgroup_path(const char *p)
{
	if (p[0] != '/' || p[1] == '\0')
		return 0;
	for (const char *c = p; *c != '\0'; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      strchr("_+.-/:", *c)))
			return 0;
		if (c[0] == '/' && (c[1] == '/' || c[1] == '\0' || (c[1] == '.' && (c[2] == '/' || c[2] == '\0')) ||
				    (c[1] == '.' && c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))
			return 0;
	}
	return 1;
}

static unsigned long clone_flag(const char *type)
{
	static const struct {
		const char *name;
		unsigned long flag;
	} t[] = {{"pid", 0x20000000}, {"network", 0x40000000}, {"mount", 0x00020000}, {"ipc", 0x08000000},
		 {"uts", 0x04000000}, {"time", 0x00000080}};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, type) == 0)
			return t[i].flag;
	return 0;
}

// berth_early_create starts a create (or run) ahead: from the bundle's config it makes the state
// directory (with the marker) and the container's cgroup directories, and sends the process started
// ahead its stdio and preserved descriptors, its directory (the rootfs), the namespaces and the v2
// cgroup, so that it forks into the container while the runtime half starts Go. Only a hybrid host
// (whose v2 hierarchy carries no limits) and configs whose cgroup path, namespaces and root need no
// interpretation qualify; the runtime half verifies the rest.
void berth_early_create(int sock, const char *root, const char *id, int preserve, const char *bundle)
{
	if (!valid_id(id) || preserve < 0 || preserve > 60)
		return;
	struct statfs sf;
	if (statfs(UNIFIED, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC || access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
		return;
	char abs_bundle[PATH_MAX * 2 + 2];
	if (bundle[0] == '/') {
		snprintf(abs_bundle, sizeof(abs_bundle), "%s", bundle);
	} else {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return;
		snprintf(abs_bundle, sizeof(abs_bundle), "%s/%s", cwd, bundle);
	}
	if (strlen(abs_bundle) >= PATH_MAX)
		return;
	char path[sizeof(abs_bundle) + 16];
	snprintf(path, sizeof(path), "%s/config.json", abs_bundle);
	static char buf[EARLY_STATE_MAX * 4];
	ssize_t n = read_file(path, buf, sizeof(buf), 0); // a larger config is not worth it
	if (n < 0)
		return;
	static struct config cf;
	memset(&cf, 0, sizeof(cf));
	struct scan s = {buf, buf + (size_t)n};
	if (!object(&s, top_field, &cf) || cf.bad || cf.terminal || cf.root[0] == '\0')
		return;

	// The namespaces, as the runtime half renders its bootstrap (nsexec.go, Encode).
	static char ns[8192];
	ns[0] = '\0';
	unsigned long flags = 0;
	for (int i = 0; i < cf.ntypes; i++) {
		if (cf.paths[i][0] != '\0') {
			const char *name = ns_proc_name(cf.types[i]);
			if (name == NULL || strchr(cf.paths[i], '\n') != NULL)
				return;
			size_t len = strlen(ns);
			snprintf(ns + len, sizeof(ns) - len, "join %s %s\n", name, cf.paths[i]);
		} else if (strcmp(cf.types[i], "cgroup") != 0) {
			unsigned long f = clone_flag(cf.types[i]);
			if (f == 0 || (flags & f))
				return;
			flags |= f;
		}
	}
	if (flags != 0) {
		size_t len = strlen(ns);
		snprintf(ns + len, sizeof(ns) - len, "unshare %lu\n", flags);
	}

	// The root, resolved as the runtime half does (the bundle's absolute path, symlinks evaluated).
	char joined[sizeof(abs_bundle) + sizeof(cf.root) + 2], rootfs[PATH_MAX];
	if (cf.root[0] == '/')
		snprintf(joined, sizeof(joined), "%s", cf.root);
	else
		snprintf(joined, sizeof(joined), "%s/%s", abs_bundle, cf.root);
	struct stat st;
	if (realpath(joined, rootfs) == NULL || stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode) || strchr(rootfs, '\n') != NULL)
		return;

	char cgpath[2048 + 1200];
	if (cf.cgroups_path[0] != '\0')
		snprintf(cgpath, sizeof(cgpath), "%s", cf.cgroups_path);
	else
		snprintf(cgpath, sizeof(cgpath), "/berth/%s", id);
	if (!clean_cgroup_path(cgpath) || strlen(UNIFIED) + strlen(cgpath) >= sizeof(berth_early_cgroup))
		return;
	for (int i = 0; i < 3 + preserve; i++)
		if (fcntl(i, F_GETFD) < 0)
			return;

	// The cgroup directories to make: the v2 one, to fork into, and the v1 hierarchies' (but
	// cpuset's, whose values the runtime half copies from its parent), which the runtime half would
	// otherwise make on its critical path.
	static char dirs[1 + EARLY_MAX_V1][sizeof(berth_early_cgroup)];
	int ndirs = 0;
	snprintf(dirs[ndirs++], sizeof(dirs[0]), UNIFIED "%s", cgpath);
	DIR *d = opendir("/sys/fs/cgroup");
	if (d == NULL)
		return;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.' || strcmp(e->d_name, "cpuset") == 0 ||
		    strcmp(e->d_name, "unified") == 0)
			continue;
		char mnt[300];
		snprintf(mnt, sizeof(mnt), "/sys/fs/cgroup/%s", e->d_name);
		if (statfs(mnt, &sf) < 0 || sf.f_type != CGROUP_SUPER_MAGIC || ndirs == 1 + EARLY_MAX_V1 ||
		    strlen(mnt) + strlen(cgpath) >= sizeof(dirs[0]))
			continue;
		snprintf(dirs[ndirs++], sizeof(dirs[0]), "%s%s", mnt, cgpath);
	}
	closedir(d);

	// The state directory first (a duplicate id stops here), with the marker naming the cgroup
	// directories before they exist.
	char state[sizeof(berth_early_state)], marker[sizeof(berth_early_state) + 32];
	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		return;
	snprintf(state, sizeof(state), "%s/%s", root, id);
	snprintf(marker, sizeof(marker), "%s/" EARLY_MARKER, state);
	if (mkdir(state, 0711) < 0)
		return;
	strcpy(berth_early_state, state);
	berth_early_kind = 2;
	int m = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (m < 0) {
		berth_early = -1;
		return;
	}
	static char list[sizeof(dirs)];
	list[0] = '\0';
	for (int i = 0; i < ndirs; i++) {
		strcat(list, dirs[i]);
		strcat(list, "\n");
	}
	if (write(m, list, strlen(list)) != (ssize_t)strlen(list)) {
		close(m);
		berth_early = -1;
		return;
	}
	close(m);
	// Parents as needed; the container's own directories must be new. On failure the marker is cut
	// back to what was made, so that nothing else is removed in its name.
	for (int i = 0; i < ndirs; i++) {
		char *cg = dirs[i];
		int ok = 1;
		for (char *slash = strchr(cg + strlen("/sys/fs/cgroup/"), '/'); slash != NULL && ok; slash = strchr(slash + 1, '/')) {
			*slash = '\0';
			ok = mkdir(cg, 0755) == 0 || errno == EEXIST;
			*slash = '/';
		}
		if (!ok || mkdir(cg, 0755) < 0) {
			list[0] = '\0';
			for (int j = 0; j < i; j++) {
				strcat(list, dirs[j]);
				strcat(list, "\n");
			}
			if ((m = open(marker, O_WRONLY | O_TRUNC | O_CLOEXEC)) >= 0) {
				if (write(m, list, strlen(list)) < 0)
					list[0] = '\0';
				close(m);
			}
			berth_early = -1;
			return;
		}
	}
	char *cgroup = dirs[0];
	strcpy(berth_early_cgroup, cgroup);
	int cgfd = open(cgroup, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		berth_early = -1;
		return;
	}

	int fds[64];
	int nfds = 3 + preserve;
	for (int i = 0; i < nfds; i++)
		fds[i] = i;
	static char spawn[PATH_MAX + 64];
	snprintf(spawn, sizeof(spawn), "hole %d\ndir %s\n", nfds, rootfs);
	if (send_frame_fds(sock, spawn, fds, nfds) < 0 || send_frame_fds(sock, ns, NULL, 0) < 0 ||
	    send_frame_fds(sock, "cgfd .\n", &cgfd, 1) < 0) {
		berth_early = -1;
	} else {
		berth_early = 1;
		strcpy(berth_early_ns, ns);
		strcpy(berth_early_dir, rootfs);
		berth_early_preserve = preserve;
	}
	close(cgfd);
}
