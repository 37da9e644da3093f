// nsenter.c: joins a target's namespaces before the Go runtime starts.
//
// setns(2) into user and time namespaces, and an effective setns into a PID
// namespace, need a single-threaded process; a Go program is never one. Like
// runc's nsexec, this constructor runs first when ephem re-executes itself
// with _EPHEM_JOIN set. It:
//   1. unshares a mount namespace (as the host's root) and mounts a tmpfs on
//      _EPHEM_ROOTFS with the image as an overlay at <ROOTFS>/root;
//   2. joins the namespaces listed in _EPHEM_JOIN ("net:4,user:5,...", in
//      that order), opening a second mount namespace owned by the target's user
//      namespace when it joined one;
//   3. forks: the parent stays a tiny relay that waits and passes the exit
//      status on; the child, inside the target's PID namespace, becomes the
//      container's init (ephem_init in cinit.c), which never returns: it sets
//      the root up, drops to the container's credentials while the process
//      is still single-threaded, and runs and supervises the command
//      (csuper.c). A session starts no Go runtime but the client's.
// Without root (_EPHEM_ROOTLESS, a target in a user namespace the user owns)
// steps 1 and 2 swap: it joins the user namespace and those it owns first,
// then creates the mount namespace inside it and mounts the image there.
// Errors go to the control socket (_EPHEM_CTL) as one JSON message.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cinit.h"
#include "nsenter.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int ctl_fd = -1;
// overlay_userxattr mounts the overlay with "userxattr" (_EPHEM_USERXATTR:
// the layers were unpacked without root, opaque directories marked with
// user.overlay.opaque).
static int overlay_userxattr;

// json_escape copies in to out (of size n) as the inside of a JSON string:
// quotes, backslashes and every control character escaped, cut short
// rather than overflowing.
void json_escape(const char *in, char *out, size_t n) {
	size_t j = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && j + 7 < n; p++) {
		if (*p == '"' || *p == '\\') {
			out[j++] = '\\';
			out[j++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			j += (size_t)snprintf(out + j, n - j, "\\u%04x", *p);
		} else {
			out[j++] = (char)*p;
		}
	}
	out[j] = 0;
}

// fail reports msg (with errno's text) on the control socket and exits.
void fail(const char *kind, const char *fmt, ...) {
	int saved = errno;
	char msg[1024], out[1400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char esc[1100];
	json_escape(msg, esc, sizeof esc);
	int n = snprintf(out, sizeof out, "{\"t\":\"error\",\"kind\":\"%s\",\"errno\":%d,\"msg\":\"%s: %s\"}",
			 kind, saved, esc, strerror(saved));
	if (ctl_fd >= 0) send(ctl_fd, out, n, MSG_NOSIGNAL);
	_exit(125);
}

// parse_ulong reads one unsigned decimal (or, with base 16, hex) number
// from *s up to the next ':' or ',' (or the end), strictly, and advances *s
// past it. Returns -1 on malformed input.
static int parse_ulong(const char **s, int base, unsigned long long max, unsigned long long *out) {
	char *end;
	if (**s < '0' || **s > 'f') return -1;
	errno = 0;
	unsigned long long v = strtoull(*s, &end, base);
	if (errno || end == *s || v > max || (*end && *end != ':' && *end != ',')) return -1;
	*out = v;
	*s = end;
	return 0;
}

// parse_fd reads a descriptor number from the environment, strictly.
static int parse_fd(const char *v) {
	unsigned long long n;
	if (!v || parse_ulong(&v, 10, INT_MAX, &n) || *v) return -1;
	return (int)n;
}

static int ns_flag(const char *name) {
	static const struct { const char *n; int f; } t[] = {
		{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		{"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP},
		{"time", CLONE_NEWTIME}, {"mnt", CLONE_NEWNS},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(t[i].n, name)) return t[i].f;
	return 0;
}

#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#define SYS_move_mount 429
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define OPEN_TREE_CLONE_ 1
#define AT_RECURSIVE_ 0x8000
#define MOUNT_ATTR_IDMAP_ 0x00100000
struct mount_attr_ {
	unsigned long long attr_set, attr_clr, propagation, userns_fd;
};
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_CMD_CREATE_ 6
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4

// mount_overlay_new mounts with fsopen and one "lowerdir+" per layer (Linux
// 6.8+), which has no limit on the number of layers. lower is top-first,
// ':'-separated. Returns -1 with errno set when the kernel lacks support.
static int mount_overlay_new(const char *lower, const char *upper, const char *work, const char *target) {
	int fs = syscall(SYS_fsopen, "overlay", 1 /* FSOPEN_CLOEXEC */);
	if (fs < 0) return -1;
	char *dup = strdup(lower), *save = NULL;
	if (!dup) {
		close(fs);
		return -1;
	}
	for (char *l = strtok_r(dup, ":", &save); l; l = strtok_r(NULL, ":", &save)) {
		if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "lowerdir+", l, 0) < 0) {
			free(dup);
			close(fs);
			return -1;
		}
	}
	free(dup);
	if ((overlay_userxattr && syscall(SYS_fsconfig, fs, 0 /* FSCONFIG_SET_FLAG */, "userxattr", NULL, 0) < 0) ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "upperdir", upper, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "workdir", work, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, NULL, NULL, 0) < 0) {
		close(fs);
		return -1;
	}
	int mnt = syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, 0);
	close(fs);
	if (mnt < 0) return -1;
	int r = syscall(SYS_move_mount, mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH_);
	close(mnt);
	return r;
}

// idmap_at clones the mount at src, idmaps it with the user namespace
// userns_fd (IDs on disk read as the same IDs inside that namespace) and
// attaches it at dst. Returns -1 with errno set on failure.
static int idmap_at(const char *src, const char *dst, int userns_fd) {
	int fd = syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE_ | O_CLOEXEC);
	if (fd < 0) return -1;
	struct mount_attr_ attr = {.attr_set = MOUNT_ATTR_IDMAP_, .userns_fd = (unsigned long long)userns_fd};
	int r = syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr);
	if (r == 0) r = syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH_);
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

// idmapped_overlay mounts the image for a target in its own user namespace:
// every layer is idmapped with that namespace, so the image's root-owned
// files belong to the namespace's root, not to nobody. The upper layer stays
// a plain tmpfs (overlayfs writes it with the mounter's credentials, which
// an idmapping of the target's namespace cannot represent); its root belongs
// to root_ids, the host IDs of the namespace's root, so that root can write.
static int idmapped_overlay(const char *dir, const char *lower, int userns_fd, const char *root_ids) {
	char path[4096], root[4096], upper[4096], work[4096];
	size_t cap = strlen(lower) + 64 * 64 + 4096, used = 0;
	char *lowers = calloc(1, cap), *dup = strdup(lower), *save = NULL;
	int i = 0, ok = 0;
	unsigned uid = 0, gid = 0;
	if (!lowers || !dup) goto out;
	if (root_ids && sscanf(root_ids, "%u:%u", &uid, &gid) != 2) {
		errno = EINVAL;
		goto out;
	}
	snprintf(path, sizeof path, "%s/l", dir);
	if (mkdir(path, 0755) < 0) goto out;
	for (char *l = strtok_r(dup, ":", &save); l; l = strtok_r(NULL, ":", &save), i++) {
		snprintf(path, sizeof path, "%s/l/%d", dir, i);
		if (mkdir(path, 0755) < 0 || idmap_at(l, path, userns_fd) < 0) goto out;
		if (used + strlen(path) + 2 > cap) goto out;
		used += snprintf(lowers + used, cap - used, "%s%s", used ? ":" : "", path);
	}
	snprintf(upper, sizeof upper, "%s/upper", dir);
	snprintf(work, sizeof work, "%s/work", dir);
	snprintf(root, sizeof root, "%s/root", dir);
	if (mkdir(upper, 0755) < 0 || mkdir(work, 0755) < 0 || chown(upper, uid, gid) < 0) goto out;
	ok = mount_overlay_new(lowers, upper, work, root) == 0;
out:
	free(lowers);
	free(dup);
	return ok ? 0 : -1;
}

// setup_rootfs mounts a tmpfs on dir and the image as an overlay on dir/root.
static void setup_rootfs(const char *dir, const char *lower, int userns_fd, const char *root_ids) {
	char upper[4096], work[4096], root[4096];
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		fail(KIND_OS, "mounting a tmpfs on %s", dir);
	snprintf(root, sizeof root, "%s/root", dir);
	if (mkdir(root, 0755) < 0) fail(KIND_OS, "creating %s", root);
	if (userns_fd >= 0) {
		if (idmapped_overlay(dir, lower, userns_fd, root_ids) == 0) return;
		// Without idmapped mounts the image still works; its files read
		// as owned by nobody inside the target's user namespace. Start
		// over on a fresh tmpfs.
		if (umount2(dir, MNT_DETACH) < 0 || mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0 ||
		    mkdir(root, 0755) < 0)
			fail(KIND_OS, "resetting the tmpfs on %s", dir);
	}
	snprintf(upper, sizeof upper, "%s/upper", dir);
	snprintf(work, sizeof work, "%s/work", dir);
	if (mkdir(upper, 0755) < 0 || mkdir(work, 0755) < 0)
		fail(KIND_OS, "creating overlay directories under %s", dir);
	if (mount_overlay_new(lower, upper, work, root) == 0) return;
	// Older kernels: one option string, limited to a page.
	size_t n = strlen(lower) + strlen(upper) + strlen(work) + 80;
	char *opts = malloc(n);
	if (!opts) fail(KIND_OS, "allocating the overlay's options");
	snprintf(opts, n, "lowerdir=%s,upperdir=%s,workdir=%s%s", lower, upper, work, overlay_userxattr ? ",userxattr" : "");
	if (mount("overlay", root, "overlay", 0, opts) < 0) {
		if (errno == ENODEV)
			fail(KIND_UNSUPPORTED, "mounting the image: this kernel has no overlay filesystem (modprobe overlay)");
		if (errno == EPERM && overlay_userxattr)
			fail(KIND_UNSUPPORTED, "mounting the image in the target's user namespace (overlayfs there needs Linux 5.11+; or run ephem as root)");
		fail(KIND_OS, "mounting the image as an overlay on %s", root);
	}
	free(opts);
}

// relay waits for the container's init and exits with its status, so the
// ephem process that started us sees the session's end as our exit.
static void relay(pid_t child) {
	int st = 0;
	close(ctl_fd);
	for (;;) {
		if (waitpid(child, &st, 0) >= 0) break;
		if (errno != EINTR) _exit(125);
	}
	if (WIFSIGNALED(st)) _exit(128 + WTERMSIG(st));
	_exit(WEXITSTATUS(st));
}

// userns_fd returns the descriptor of the user namespace in spec, or -1.
static int userns_fd(const char *spec) {
	for (const char *p = spec; p; p = strchr(p, ',')) {
		if (*p == ',') p++;
		if (strncmp(p, "user:", 5) != 0) continue;
		const char *v = p + 5;
		unsigned long long n;
		if (parse_ulong(&v, 10, INT_MAX, &n) || (*v && *v != ',')) fail(KIND_INTERNAL, "bad namespace list %.64s", spec);
		return (int)n;
	}
	return -1;
}

static void join(const char *spec) {
	char *dup = strdup(spec), *save = NULL;
	if (!dup) fail(KIND_OS, "copying the namespace list");
	int joined_user = 0;
	for (char *item = strtok_r(dup, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		if (!colon) fail(KIND_INTERNAL, "bad namespace item %s", item);
		*colon = 0;
		int flag = ns_flag(item), fd = parse_fd(colon + 1);
		if (fd < 0) fail(KIND_INTERNAL, "bad descriptor for namespace %s", item);
		if (!flag) fail(KIND_INTERNAL, "unknown namespace %s", item);
		if (setns(fd, flag) < 0) fail(errno == EPERM ? KIND_PERMISSION : KIND_OS, "joining the target's %s namespace", item);
		close(fd);
		if (flag == CLONE_NEWUSER) {
			joined_user = 1;
			// Become root of the target's user namespace, as runc does.
			if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
				fail(KIND_OS, "becoming root in the target's user namespace (is UID 0 mapped?)");
		}
	}
	free(dup);
	// Mounts from here on need a mount namespace owned by the joined user
	// namespace; it inherits the overlay mounted above.
	if (joined_user && unshare(CLONE_NEWNS) < 0)
		fail(KIND_OS, "creating a mount namespace in the target's user namespace");
}

// drop_creds makes init the debug container's equal before the command
// starts: the bounding set becomes caps; UID, GID and groups the command's
// (groups only where the user namespace allows setgroups); the permitted
// and effective sets the command's own (caps as root; as another user only
// KILL, if caps has it, to end the session's processes whatever user they
// became); no ambient capabilities, no_new_privs as the container's, and
// never dumpable. A process of the container that can trace init gains
// nothing it could not have.
void drop_creds(const struct cuser *u, uint64_t caps, int nnp) {
	char sg[16] = "";
	int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, sg, sizeof sg - 1) < 0) sg[0] = 0;
		close(fd);
	}
	int setgroups_ok = strncmp(sg, "deny", 4) != 0;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail(KIND_OS, "keeping capabilities across the user change");
	for (int c = 0; c < 64; c++) {
		if (caps >> c & 1) continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			fail(KIND_OS, "dropping capability %d from the bounding set", c);
	}
	if (setgroups_ok && setgroups(u->ngroups, u->groups) < 0) fail(KIND_OS, "setting the supplementary groups");
	if (setresgid(u->gid, u->gid, u->gid) < 0) fail(KIND_OS, "setting group %u", (unsigned)u->gid);
	if (setresuid(u->uid, u->uid, u->uid) < 0) fail(KIND_OS, "setting user %u", (unsigned)u->uid);
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0) fail(KIND_OS, "reading capabilities");
	uint64_t want = u->uid == 0 ? caps : caps & (1ULL << CAP_KILL);
	for (int i = 0; i < 2; i++) {
		unsigned w = (unsigned)(want >> (32 * i)), keep = (unsigned)(caps >> (32 * i));
		data[i].permitted &= w;
		data[i].effective = data[i].permitted;
		data[i].inheritable &= keep;
	}
	if (syscall(SYS_capset, &hdr, data) < 0) fail(KIND_OS, "setting capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		fail(KIND_OS, "clearing ambient capabilities");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) fail(KIND_OS, "resetting keep-capabilities");
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(KIND_OS, "setting no_new_privs");
	// A change of credentials makes the process dumpable again: undo it
	// last. The parent-death signal is reset by it too.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) fail(KIND_OS, "making the process non-dumpable");
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0) fail(KIND_OS, "setting the parent-death signal");
}

// unshare_new creates the namespaces in list ("net,ipc,uts,cgroup"), for a
// target that runs nothing (_EPHEM_UNSHARE): there is nothing to join.
static void unshare_new(const char *list) {
	if (!list) return;
	char *dup = strdup(list), *save = NULL;
	if (!dup) fail(KIND_OS, "copying the namespace list");
	int flags = 0;
	for (char *item = strtok_r(dup, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		int flag = ns_flag(item);
		if (!flag || flag == CLONE_NEWUSER || flag == CLONE_NEWPID) fail(KIND_INTERNAL, "cannot create namespace %s here", item);
		flags |= flag;
	}
	free(dup);
	if (unshare(flags) < 0) fail(KIND_OS, "creating the debug container's namespaces (%s)", list);
}

__attribute__((constructor)) static void ephem_nsenter(void) {
	const char *spec = getenv("_EPHEM_JOIN");
	if (!spec) return;
	ctl_fd = parse_fd(getenv("_EPHEM_CTL"));
	// Nothing in the target may open /proc/<us>/exe and write the host's
	// binary (CVE-2019-5736): stay non-dumpable until exec.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) fail(KIND_OS, "making the process non-dumpable");
	// Rootless (_EPHEM_ROOTLESS): without root nothing below is allowed
	// before joining the target's user namespace, which join follows with a
	// mount namespace of its own; the image is mounted there, unidmapped
	// (the user's files are the namespace root's).
	int rootless = getenv("_EPHEM_ROOTLESS") != NULL;
	overlay_userxattr = getenv("_EPHEM_USERXATTR") != NULL;
	unsetenv("_EPHEM_ROOTLESS");
	unsetenv("_EPHEM_USERXATTR");
	if (rootless) join(spec);
	else if (unshare(CLONE_NEWNS) < 0) fail(KIND_OS, "creating a mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(KIND_OS, "making mounts private");
	const char *rootfs = getenv("_EPHEM_ROOTFS"), *lower = getenv("_EPHEM_LOWER");
	if (rootfs && lower) {
		char root[4096];
		setup_rootfs(rootfs, lower, rootless ? -1 : userns_fd(spec), getenv("_EPHEM_ROOT_IDS"));
		// Hold the image root as the working directory: after joining a
		// user namespace, the path to it (the cache's ancestors) may not
		// be searchable, but the working directory always is.
		snprintf(root, sizeof root, "%s/root", rootfs);
		if (chdir(root) < 0) fail(KIND_OS, "entering %s", root);
	}
	if (!rootless) join(spec);
	if (rootfs && lower) {
		// A mount copied into a namespace owned by a less privileged user
		// namespace is locked, and pivot_root refuses locked mounts; a
		// bind of it made here is not. Step onto the bind through the
		// session's own tmpfs.
		if (mount(".", ".", NULL, MS_BIND | MS_REC, NULL) < 0) fail(KIND_OS, "binding the image root");
		if (chdir("..") < 0 || chdir("root") < 0) fail(KIND_OS, "entering the image root");
	}
	unshare_new(getenv("_EPHEM_UNSHARE"));
	if (getenv("_EPHEM_NEWPID") && unshare(CLONE_NEWPID) < 0) fail(KIND_OS, "creating a PID namespace");
	pid_t pid = fork();
	if (pid < 0) fail(KIND_OS, "forking the container's init");
	if (pid > 0) {
		prctl(PR_SET_NAME, "ephem-relay", 0, 0, 0);
		relay(pid);
	}
	// What ps shows in the target's PID namespace (not "exe").
	prctl(PR_SET_NAME, "ephem-init", 0, 0, 0);
	// The container's init: end with the relay (and so with ephem).
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0) fail(KIND_OS, "setting the parent-death signal");
	ephem_init();
}
