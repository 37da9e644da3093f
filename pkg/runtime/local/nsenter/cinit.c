// cinit.c: the debug container's init, the set-up half. The constructor
// has mounted the image (the working directory is its root) and joined or
// created the namespaces; ephem_init receives the config on the control
// socket, mounts /proc, /dev, /sys (and a stopped target's filesystem at
// /target), writes the target's resolv.conf, hosts and hostname into the
// image, pivots into it, resolves the command's user in the image's
// /etc/passwd and /etc/group, drops to the container's credentials, and
// hands over to csuper.c. Nothing here runs the Go runtime.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "cinit.h"
#include "nsenter.h"

#define MAX_CONFIG (64 << 20)

int send_with_fd(int sock, const void *buf, size_t n, int passfd) {
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (passfd >= 0) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &passfd, sizeof(int));
	}
	ssize_t r;
	while ((r = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
	}
	return r < 0 ? -1 : 0;
}

void send_json(int fd, const char *json, int passfd) { send_with_fd(fd, json, strlen(json), passfd); }

// send_text sends {"t":TYPE,<extra>"msg":TEXT} on the control socket,
// TEXT formatted from fmt and escaped.
static void send_text(const char *type, const char *extra, const char *fmt, va_list ap) {
	char msg[1024], esc[1400], out[1600];
	vsnprintf(msg, sizeof msg, fmt, ap);
	json_escape(msg, esc, sizeof esc);
	snprintf(out, sizeof out, "{\"t\":\"%s\",%s\"msg\":\"%s\"}", type, extra, esc);
	if (ctl_fd >= 0) send_json(ctl_fd, out, -1);
}

void send_warning(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	send_text("warning", "", fmt, ap);
	va_end(ap);
}

void fail_msg(const char *kind, const char *fmt, ...) {
	char extra[64];
	snprintf(extra, sizeof extra, "\"kind\":\"%s\",", kind);
	va_list ap;
	va_start(ap, fmt);
	send_text("error", extra, fmt, ap);
	va_end(ap);
	_exit(125);
}

// recv_config reads the config message: its memfd and, for a stopped
// target, a detached mount of the target's filesystem.
static char *recv_config(size_t *len, int *target_fd) {
	char buf[256];
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
	ssize_t n;
	while ((n = recvmsg(ctl_fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
	}
	if (n < 0) fail(KIND_OS, "reading the config");
	if (n == 0) _exit(125); // ephem went away before sending it
	buf[n] = 0;
	int fds[2] = {-1, -1}, nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && nfds < 2; i++) memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (!strstr(buf, "\"t\":\"config\"") || nfds < 1 || (mh.msg_flags & MSG_CTRUNC))
		fail_msg(KIND_INTERNAL, "expected the config with its descriptor, got %.64s with %d", buf, nfds);
	struct stat st;
	if (fstat(fds[0], &st) < 0) fail(KIND_OS, "reading the config's memfd");
	if (st.st_size <= 0 || st.st_size > MAX_CONFIG) fail_msg(KIND_INTERNAL, "the config has %lld bytes", (long long)st.st_size);
	char *p = malloc((size_t)st.st_size + 1);
	if (!p) fail(KIND_OS, "allocating the config");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = pread(fds[0], p + got, (size_t)st.st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) fail(KIND_OS, "reading the config's memfd");
		got += (size_t)r;
	}
	close(fds[0]);
	p[got] = 0;
	*len = got;
	*target_fd = fds[1];
	return p;
}

static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

// parse_config decodes the records strictly; strings point into buf,
// which keeps a NUL after each record (the record's tag byte of the next
// one is overwritten once read).
static void parse_config(char *buf, size_t len, struct cconfig *c) {
	size_t nargs = 0, nenv = 0, nfiles = 0;
	for (int pass = 0; pass < 2; pass++) {
		size_t off = 0, ia = 0, ie = 0, ifl = 0;
		while (off < len) {
			if (len - off < 5) goto bad;
			unsigned char tag = (unsigned char)buf[off];
			uint32_t n = le32((unsigned char *)buf + off + 1);
			if (n > len - off - 5) goto bad;
			char *v = buf + off + 5;
			off += 5 + n;
			if (pass == 0) {
				nargs += tag == CFG_ARG;
				nenv += tag == CFG_ENV;
				nfiles += tag == CFG_FILE;
				continue;
			}
			// Each value is followed by the next record's tag, or by
			// the NUL recv_config put at the end: copy it out first.
			char *s = malloc(n + 1);
			if (!s) fail(KIND_OS, "allocating the config");
			memcpy(s, v, n);
			s[n] = 0;
			switch (tag) {
			case CFG_ARG: c->argv[ia++] = s; break;
			case CFG_ENV: c->env[ie++] = s; break;
			case CFG_CWD: c->cwd = s; break;
			case CFG_USER: c->user = s; break;
			case CFG_FLAGS:
				if (n != 4) goto bad;
				c->flags = le32((unsigned char *)s);
				break;
			case CFG_CAPS:
				if (n != 8) goto bad;
				c->caps = (uint64_t)le32((unsigned char *)s) | (uint64_t)le32((unsigned char *)s + 4) << 32;
				break;
			case CFG_SECCOMP:
				if (n == 0 || n % 8 || n / 8 > 4096) goto bad;
				c->seccomp = s;
				c->seccomp_len = n / 8;
				break;
			case CFG_WINSIZE:
				if (n != 4) goto bad;
				c->rows = (uint16_t)(s[0] & 0xff) | (uint16_t)((s[1] & 0xff) << 8);
				c->cols = (uint16_t)(s[2] & 0xff) | (uint16_t)((s[3] & 0xff) << 8);
				break;
			case CFG_FILE: {
				char *nul = memchr(s, 0, n);
				if (!nul || nul == s) goto bad;
				c->files[ifl].name = s;
				c->files[ifl].data = nul + 1;
				c->files[ifl].len = n - (size_t)(nul + 1 - s);
				ifl++;
				break;
			}
			case CFG_TARGET: break;
			default: goto bad;
			}
		}
		if (pass == 0) {
			c->argv = calloc(nargs + 1, sizeof(char *));
			c->env = calloc(nenv + 5, sizeof(char *));
			c->files = calloc(nfiles + 1, sizeof(struct cfile));
			if (!c->argv || !c->env || !c->files) fail(KIND_OS, "allocating the config");
			c->nenv = nenv;
			c->nfiles = nfiles;
		}
	}
	return;
bad:
	fail_msg(KIND_INTERNAL, "malformed config");
}

// real_dir makes dir (absolute, inside the image root, the working
// directory) a real directory: each component that is not a directory (a
// symlink out of the root, say) is replaced by one. Writes the path
// relative to the root into out.
static int real_dir(const char *dir, char *out, size_t n) {
	size_t j = snprintf(out, n, ".");
	for (const char *p = dir; *p;) {
		while (*p == '/') p++;
		const char *e = strchrnul(p, '/');
		if (e == p) break;
		if ((e - p == 1 && p[0] == '.') || (e - p == 2 && p[0] == '.' && p[1] == '.')) {
			errno = EINVAL;
			return -1;
		}
		if (j + (size_t)(e - p) + 2 > n) {
			errno = ENAMETOOLONG;
			return -1;
		}
		j += snprintf(out + j, n - j, "/%.*s", (int)(e - p), p);
		p = e;
		struct stat st;
		if (lstat(out, &st) == 0) {
			if (S_ISDIR(st.st_mode)) continue;
			if (unlink(out) < 0) return -1;
		} else if (errno != ENOENT) {
			return -1;
		}
		if (mkdir(out, 0755) < 0) return -1;
	}
	return 0;
}

static void mount_at(const char *dir, const char *source, const char *fstype, unsigned long flags, const char *data) {
	char p[PATH_MAX];
	if (real_dir(dir, p, sizeof p) < 0) fail(KIND_OS, "creating %s in the image", dir);
	if (mount(source, p, fstype, flags, data) < 0) fail(KIND_OS, "mounting %s on %s", fstype ? fstype : source, dir);
}

static int write_file(const struct cfile *f) {
	char dir[PATH_MAX], path[PATH_MAX];
	const char *slash = strrchr(f->name, '/');
	if (!slash || !slash[1]) {
		errno = EINVAL;
		return -1;
	}
	snprintf(path, sizeof path, "%.*s", (int)(slash - f->name), f->name);
	if (real_dir(path, dir, sizeof dir) < 0) return -1;
	if (snprintf(path, sizeof path, "%s/%s", dir, slash + 1) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	// Whatever the image has there that is not a regular file goes: a
	// symlink out of the root, a FIFO that would block init forever.
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && unlink(path) < 0) return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) return -1;
	for (size_t off = 0; off < f->len;) {
		ssize_t w = write(fd, f->data + off, f->len - off);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		off += (size_t)w;
	}
	return close(fd);
}

static const char *devices[] = {"null", "zero", "full", "random", "urandom", "tty"};

static void setup_dev(int privileged) {
	char p[PATH_MAX], dev[PATH_MAX];
	if (privileged) {
		mount_at("/dev", "/dev", NULL, MS_BIND | MS_REC, NULL);
	} else {
		mount_at("/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=755,size=65536k");
		for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
			snprintf(p, sizeof p, "./dev/%s", devices[i]);
			snprintf(dev, sizeof dev, "/dev/%s", devices[i]);
			int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666);
			if (fd < 0) fail(KIND_OS, "creating /dev/%s", devices[i]);
			close(fd);
			if (mount(dev, p, NULL, MS_BIND, NULL) < 0) fail(KIND_OS, "binding /dev/%s", devices[i]);
		}
		static const char *links[][2] = {{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
			{"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"}};
		for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
			snprintf(p, sizeof p, "./dev/%s", links[i][0]);
			if (symlink(links[i][1], p) < 0) fail(KIND_OS, "linking /dev/%s", links[i][0]);
		}
		mount_at("/dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
	}
	if (real_dir("/dev/pts", p, sizeof p) < 0) fail(KIND_OS, "creating /dev/pts");
	unsigned long flags = MS_NOSUID | MS_NOEXEC;
	if (mount("devpts", p, "devpts", flags, "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0 &&
	    mount("devpts", p, "devpts", flags, "newinstance,ptmxmode=0666,mode=0620") < 0)
		fail(KIND_OS, "mounting devpts");
	if (privileged) {
		// The host's /dev is bound here: cover its ptmx in this mount
		// namespace only, never replace the host's node.
		if (mount("./dev/pts/ptmx", "./dev/ptmx", NULL, MS_BIND, NULL) < 0) fail(KIND_OS, "binding /dev/ptmx");
		return;
	}
	unlink("./dev/ptmx");
	if (symlink("pts/ptmx", "./dev/ptmx") < 0) fail(KIND_OS, "linking /dev/ptmx");
}

// setup_sys mounts sysfs (read-only unless privileged); where the kernel
// refuses a new sysfs (a network namespace this user namespace does not
// own) it binds the host's, read-only. Failure is only a warning.
static void setup_sys(int privileged) {
	char p[PATH_MAX];
	if (real_dir("/sys", p, sizeof p) < 0) {
		send_warning("creating /sys in the image: %s", strerror(errno));
		return;
	}
	unsigned long ro = privileged ? 0 : MS_RDONLY;
	if (mount("sysfs", p, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, NULL) == 0) return;
	if (errno != EPERM) {
		send_warning("mounting sysfs on /sys: %s", strerror(errno));
		return;
	}
	if (mount("/sys", p, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) < 0)
		send_warning("binding the host's /sys read-only: %s", strerror(errno));
}

// add_nodev remounts the image root nodev, keeping the flags it has
// (a remount inside a user namespace must not clear locked ones).
static void add_nodev(void) {
	struct statvfs st;
	if (statvfs(".", &st) < 0) fail(KIND_OS, "making the image root nodev");
	static const struct { unsigned long st, ms; } t[] = {
		{ST_RDONLY, MS_RDONLY}, {ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV}, {ST_NOEXEC, MS_NOEXEC},
		{ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
	};
	unsigned long keep = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (st.f_flag & t[i].st) keep |= t[i].ms;
	if (mount("", ".", "", MS_REMOUNT | MS_BIND | keep | MS_NODEV, "") < 0) fail(KIND_OS, "making the image root nodev");
}

#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif

// setup_stopped: a target that runs nothing. The namespaces are new: bring
// lo up, and attach the target's filesystem (read-only, made by ephem) at
// /target.
static void setup_stopped(int fd) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail(KIND_OS, "bringing lo up");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail(KIND_OS, "bringing lo up");
	close(s);
	char p[PATH_MAX];
	if (real_dir("/target", p, sizeof p) < 0) fail(KIND_OS, "creating /target in the image");
	if (syscall(SYS_move_mount, fd, "", AT_FDCWD, p, 0x4 /* MOVE_MOUNT_F_EMPTY_PATH */) < 0)
		fail(KIND_OS, "attaching the target's filesystem at /target");
	close(fd);
}

static void setup_root(const struct cconfig *c) {
	int privileged = c->flags & CFLAG_PRIVILEGED;
	if (!privileged) add_nodev();
	for (size_t i = 0; i < c->nfiles; i++)
		if (write_file(&c->files[i]) < 0) send_warning("copying the target's %s: %s", c->files[i].name, strerror(errno));
	mount_at("/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	setup_dev(privileged);
	setup_sys(privileged);
	if (c->target_fd >= 0) setup_stopped(c->target_fd);
}

// close_others closes every descriptor but the standard ones and keep[].
static void close_others(const int *keep, size_t n) {
	DIR *d = opendir("/proc/self/fd");
	if (!d) fail(KIND_OS, "listing open descriptors");
	int self = dirfd(d);
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name || fd <= 2 || fd == self) continue;
		int k = 0;
		for (size_t i = 0; i < n; i++) k |= keep[i] == fd;
		if (!k) close((int)fd);
	}
	closedir(d);
}

void ephem_init(void) {
	int listener = -1;
	const char *a = getenv("_EPHEM_ATTACH");
	if (a) {
		char *end;
		long v = strtol(a, &end, 10);
		if (!*end && v > 2 && v < INT_MAX) listener = (int)v;
	}
	size_t len;
	struct cconfig c = {.target_fd = -1};
	char *buf = recv_config(&len, &c.target_fd);
	parse_config(buf, len, &c);
	free(buf);
	if (!c.argv[0]) fail_msg(KIND_USAGE, "the image has no entrypoint or cmd: give a command after --");
	setup_root(&c);
	if (syscall(SYS_pivot_root, ".", ".") < 0) fail(KIND_OS, "pivoting into the image root");
	if (umount2(".", MNT_DETACH) < 0) fail(KIND_OS, "detaching the host's root");
	if (chdir("/") < 0) fail(KIND_OS, "entering the image root");
	// Nothing init inherited (the target's namespaces, the layer pins,
	// whatever ephem itself inherited) stays but the control socket and
	// the attach listener.
	int keep[] = {ctl_fd, listener};
	close_others(keep, 2);
	for (int i = 0; i < 2; i++)
		if (keep[i] >= 0 && fcntl(keep[i], F_SETFD, FD_CLOEXEC) < 0) fail(KIND_OS, "marking descriptor %d close-on-exec", keep[i]);
	struct cuser u;
	resolve_user(c.user, &u);
	if ((c.flags & CFLAG_NONROOT) && u.uid == 0)
		fail_msg(KIND_USAGE, "the profile requires a non-root user but the image runs as root: pass --user UID or use another profile");
	drop_creds(&u, c.caps, c.flags & CFLAG_NNP);
	run_and_supervise(&c, &u, listener);
}
