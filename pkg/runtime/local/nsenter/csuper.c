// csuper.c: the debug container's init, the supervising half. With the
// container's credentials (cinit.c dropped to them) it finds the command,
// opens its terminal, loads the container's seccomp filter into itself,
// starts the command (which inherits all of it), and stays as the
// session's subreaper: it relays the signals the client asks for, hands the
// terminal to a reattaching client, kills the whole session when the
// command ends, init is told to stop or the client goes away without
// detaching, and reports the command's exit code once no process of the
// session is left.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cinit.h"
#include "nsenter.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static int has_env(struct cconfig *c, const char *k) {
	size_t n = strlen(k);
	for (size_t i = 0; i < c->nenv; i++)
		if (!strncmp(c->env[i], k, n) && c->env[i][n] == '=') return 1;
	return 0;
}

static void add_env(struct cconfig *c, const char *k, const char *v) {
	size_t n = strlen(k) + strlen(v) + 2;
	char *e = malloc(n);
	if (!e) fail(KIND_OS, "allocating the environment");
	snprintf(e, n, "%s=%s", k, v);
	c->env[c->nenv++] = e;
	c->env[c->nenv] = NULL;
}

// complete_env adds what the image and the user did not set: PATH, HOME,
// HOSTNAME and, with a terminal, TERM (room for four is allocated).
static void complete_env(struct cconfig *c, const struct cuser *u) {
	if (!has_env(c, "PATH")) add_env(c, "PATH", DEFAULT_PATH);
	if (!has_env(c, "HOME")) add_env(c, "HOME", u->home);
	char host[256];
	if (!has_env(c, "HOSTNAME") && gethostname(host, sizeof host) == 0) {
		host[sizeof host - 1] = 0;
		add_env(c, "HOSTNAME", host);
	}
	if ((c->flags & CFLAG_TTY) && !has_env(c, "TERM")) add_env(c, "TERM", "xterm");
}

// executable reports why p cannot be run, or NULL.
static const char *not_executable(const char *p, char *why, size_t n) {
	struct stat st;
	if (stat(p, &st) < 0) {
		snprintf(why, n, "stat %s: %s", p, strerror(errno));
		return why;
	}
	if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111)) {
		snprintf(why, n, "%s is not an executable file", p);
		return why;
	}
	return NULL;
}

// look_path finds the command as exec.LookPath does, in the last PATH.
static void look_path(struct cconfig *c, char *out, size_t n) {
	const char *file = c->argv[0], *path = DEFAULT_PATH;
	char why[1024];
	for (size_t i = 0; i < c->nenv; i++)
		if (!strncmp(c->env[i], "PATH=", 5)) path = c->env[i] + 5;
	if (strchr(file, '/')) {
		if (not_executable(file, why, sizeof why)) fail_msg(KIND_NOTFOUND, "starting \"%s\" in the image: %s", file, why);
		snprintf(out, n, "%s", file);
		return;
	}
	for (const char *d = path;; d++) {
		const char *e = strchrnul(d, ':');
		int len = (int)(e - d);
		snprintf(out, n, "%.*s/%s", len ? len : 1, len ? d : ".", file);
		if (!not_executable(out, why, sizeof why)) return;
		if (!*e) break;
		d = e;
	}
	fail_msg(KIND_NOTFOUND, "starting \"%s\": executable file not found in the image's $PATH (%s)", file, path);
}

static void check_workdir(const char *dir) {
	struct stat st;
	if (stat(dir, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			fail_msg(KIND_USAGE, "working directory %s does not exist in the image: pass another --workdir", dir);
		fail_msg(KIND_USAGE, "working directory %s cannot be entered: %s: pass another --workdir", dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode)) fail_msg(KIND_USAGE, "working directory %s is not a directory: pass another --workdir", dir);
}

// open_terminal opens a terminal in the container's devpts; returns the
// master and sets *slave.
static int open_terminal(const struct cconfig *c, const struct cuser *u, int *slave) {
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0) fail(KIND_OS, "opening /dev/ptmx");
	int unlock = 0;
	if (ioctl(m, TIOCSPTLCK, &unlock) < 0) fail(KIND_OS, "unlocking the terminal");
	*slave = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0) fail(KIND_OS, "opening the terminal's slave");
	if (c->rows && c->cols) {
		struct winsize ws = {.ws_row = c->rows, .ws_col = c->cols};
		ioctl(m, TIOCSWINSZ, &ws);
	}
	if (fchown(*slave, u->uid, 5) < 0) { // the tty group, as runc does; absent in some images
	}
	return m;
}

// child_fail reports a failure before exec to init over the pipe.
static void child_fail(int pipe_fd, int stage) {
	int msg[2] = {stage, errno};
	if (write(pipe_fd, msg, sizeof msg) < 0) {
	}
	_exit(127);
}

static const char *stages[] = {"starting", "entering the working directory of", "connecting the terminal of"};

// start forks the command; init's signals are blocked (the child unblocks).
// The command inherits what init already is: the container's credentials,
// inheritable set and no_new_privs (drop_creds), and the seccomp filter,
// which init loads into itself first, so that whatever a process that can
// trace init makes it do is filtered as the command's own calls are.
static pid_t start(struct cconfig *c, const char *path, int slave) {
	if (c->seccomp) {
		struct sock_fprog prog = {.len = (unsigned short)c->seccomp_len, .filter = (struct sock_filter *)c->seccomp};
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) fail(KIND_OS, "loading the seccomp filter");
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) fail(KIND_OS, "starting \"%s\"", c->argv[0]);
	pid_t pid = fork();
	if (pid < 0) fail(KIND_OS, "starting \"%s\"", c->argv[0]);
	if (pid == 0) {
		close(p[0]);
		for (int s = 1; s < 65; s++) signal(s, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
		if (slave >= 0) {
			if (setsid() < 0 || dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0 ||
			    ioctl(0, TIOCSCTTY, 0) < 0)
				child_fail(p[1], 2);
		} else {
			setpgid(0, 0);
			if (!(c->flags & CFLAG_STDIN)) {
				int nul = open("/dev/null", O_RDONLY);
				if (nul >= 0 && nul != 0) {
					dup2(nul, 0);
					close(nul);
				}
			}
		}
		if (chdir(c->cwd && *c->cwd ? c->cwd : "/") < 0) child_fail(p[1], 1);
		execve(path, c->argv, c->env);
		child_fail(p[1], 0);
	}
	close(p[1]);
	if (slave >= 0) close(slave);
	int msg[2];
	ssize_t n;
	while ((n = read(p[0], msg, sizeof msg)) < 0 && errno == EINTR) {
	}
	close(p[0]);
	if (n == sizeof msg) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
		}
		errno = msg[1];
		int s = msg[0] >= 0 && msg[0] < (int)(sizeof stages / sizeof stages[0]) ? msg[0] : 0;
		fail(KIND_OS, "%s \"%s\"", stages[s], c->argv[0]);
	}
	return pid;
}

// kill_descendants kills every process below init, as often as asked:
// the session's processes may fork while they are being killed.
static void kill_descendants(void) {
	static pid_t pids[32768], ppids[32768];
	static char marked[32768];
	size_t n = 0;
	DIR *d = opendir("/proc");
	if (!d) return;
	for (struct dirent *e; (e = readdir(d)) && n < sizeof pids / sizeof pids[0];) {
		char *end, path[64], buf[512];
		long pid = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name) continue;
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) continue;
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0) continue;
		buf[r] = 0;
		char *paren = strrchr(buf, ')');
		int ppid;
		if (!paren || sscanf(paren + 1, " %*c %d", &ppid) != 1) continue;
		pids[n] = (pid_t)pid;
		ppids[n] = (pid_t)ppid;
		marked[n] = 0;
		n++;
	}
	closedir(d);
	pid_t self = getpid();
	for (int changed = 1; changed;) {
		changed = 0;
		for (size_t i = 0; i < n; i++) {
			if (marked[i]) continue;
			int below = ppids[i] == self;
			for (size_t j = 0; j < n && !below; j++) below = marked[j] && pids[j] == ppids[i];
			if (!below) continue;
			marked[i] = 1;
			changed = 1;
			kill(pids[i], SIGKILL);
		}
	}
}

// msg_type copies the "t" of a JSON message from the client into out.
static void msg_type(const char *m, char *out, size_t n) {
	const char *p = strstr(m, "\"t\":\"");
	out[0] = 0;
	if (!p) return;
	p += 5;
	size_t i = 0;
	while (p[i] && p[i] != '"' && i + 1 < n) {
		out[i] = p[i];
		i++;
	}
	out[i] = 0;
}

static int msg_signal(const char *m) {
	const char *p = strstr(m, "\"signal\":");
	int s = p ? atoi(p + 9) : 0;
	return s > 0 && s < 65 ? s : 0;
}

static void send_exit(int fd, int code) {
	char out[64];
	snprintf(out, sizeof out, "{\"t\":\"exit\",\"code\":%d}", code);
	send_json(fd, out, -1);
}

void run_and_supervise(struct cconfig *c, const struct cuser *u, int listener) {
	char path[4096];
	complete_env(c, u);
	look_path(c, path, sizeof path);
	check_workdir(c->cwd && *c->cwd ? c->cwd : "/");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) fail(KIND_OS, "becoming the session's subreaper");
	// SIGTERM (the relay's death), SIGINT and SIGHUP end the session.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) fail(KIND_OS, "blocking signals");
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) fail(KIND_OS, "opening a signalfd");
	int master = -1, slave = -1;
	if (c->flags & CFLAG_TTY) {
		master = open_terminal(c, u, &slave);
		// init keeps its copy of the master: a detached session's
		// terminal outlives the client, for the next ephem attach.
		send_json(ctl_fd, "{\"t\":\"pty\"}", master);
	}
	pid_t cmd = start(c, path, slave);
	int client = ctl_fd, code = -1, stopping = 0;
	char started[] = "{\"t\":\"started\"}";
	struct iovec iov = {.iov_base = started, .iov_len = sizeof started - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (sendmsg(client, &mh, MSG_NOSIGNAL) < 0) stopping = 1;
	for (;;) {
		struct pollfd pfd[3] = {{.fd = sfd, .events = POLLIN}, {.fd = client, .events = POLLIN}, {.fd = listener, .events = POLLIN}};
		if (stopping) kill_descendants();
		int r = poll(pfd, 3, stopping ? 20 : -1);
		if (r < 0 && errno != EINTR) fail(KIND_OS, "waiting in the session's init");
		if (r <= 0) continue;
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP) {
					client = -1;
					stopping = 1;
				}
			}
			for (;;) {
				int st;
				pid_t p = waitpid(-1, &st, WNOHANG);
				if (p > 0) {
					if (p == cmd) {
						code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
						stopping = 1;
					}
					continue;
				}
				if (p < 0 && errno == ECHILD) { // no process of the session left
					if (code < 0) code = 137;
					if (client >= 0) send_exit(client, code);
					_exit(code);
				}
				break;
			}
		}
		if (client >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char buf[4096];
			union {
				char b[CMSG_SPACE(4 * sizeof(int))];
				struct cmsghdr align;
			} cm;
			struct iovec in = {.iov_base = buf, .iov_len = sizeof buf - 1};
			struct msghdr rh = {.msg_iov = &in, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
			ssize_t n = recvmsg(client, &rh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
			for (struct cmsghdr *h = CMSG_FIRSTHDR(&rh); n >= 0 && h; h = CMSG_NXTHDR(&rh, h)) {
				if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
				for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
					int fd;
					memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
					close(fd); // a client sends no descriptor
				}
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
			if (n <= 0) { // the client went away without detaching
				close(client);
				client = -1;
				stopping = 1;
				continue;
			}
			buf[n] = 0;
			char t[16];
			msg_type(buf, t, sizeof t);
			if (!strcmp(t, "signal")) {
				int s = msg_signal(buf);
				if (s && kill(-cmd, s) < 0) kill(cmd, s);
			} else if (!strcmp(t, "kill")) {
				stopping = 1;
			} else if (!strcmp(t, "detach")) {
				close(client);
				client = -1;
			}
		}
		if (listener >= 0 && (pfd[2].revents & POLLIN)) {
			int nc = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
			if (nc < 0) continue;
			if (client >= 0 || master < 0) {
				send_json(nc, "{\"t\":\"error\",\"kind\":\"" KIND_BUSY "\",\"msg\":\"the session is attached elsewhere: detach the other client (ctrl-p ctrl-q) or try again when it has\"}", -1);
				close(nc);
				continue;
			}
			send_json(nc, "{\"t\":\"pty\"}", master);
			client = nc;
		}
	}
}
