// sockets.c: the rootless socket maker (_EPHEM_SOCKETS), for port-forward
// and capture without root.
//
// A Go process cannot join a user namespace (it is never single-threaded),
// and without root only the owner of a target's user namespace, from inside
// it, may join its network namespace or open a packet socket there. So
// ephem re-executes itself with _EPHEM_SOCKETS="USERFD,NETFD,CTLFD"; before
// the Go runtime starts, this constructor joins the user namespace, then the
// network namespace (NETFD -1: keep ephem's own), and serves requests on the
// SOCK_SEQPACKET socket CTLFD: each is three int32s (domain, type,
// protocol) and is answered with an int32 errno (0: success) carrying the
// new socket as SCM_RIGHTS. A socket stays in the network namespace it was
// made in wherever it is used. The helper ends when CTLFD reaches EOF (ephem
// closed it, or exited); it never runs Go code, makes nothing but sockets,
// and is not dumpable, so nothing in the target can trace it.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cinit.h"

// reply sends err and, when fd >= 0, fd on ctl; it exits when ephem is gone.
static void reply(int ctl, int32_t err, int fd) {
	if (send_with_fd(ctl, &err, sizeof err, fd) < 0) _exit(0);
}

// parse_fds reads "A,B,C" into three descriptors (-1 allowed); 0 on success.
static int parse_fds(const char *s, int out[3]) {
	for (int i = 0; i < 3; i++) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < -1 || v > 65535 || (i < 2 ? *end != ',' : *end != 0)) return -1;
		out[i] = (int)v;
		s = end + 1;
	}
	return 0;
}

__attribute__((constructor)) static void ephem_sockets(void) {
	const char *spec = getenv("_EPHEM_SOCKETS");
	if (!spec) return;
	int fds[3];
	if (parse_fds(spec, fds) < 0 || fds[0] < 0 || fds[2] < 0) _exit(125);
	int ctl = fds[2];
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_NAME, "ephem-sockets", 0, 0, 0);
	// The first reply says whether the namespaces were joined: 0, or the
	// errno, plus 1000 when joining the network namespace failed.
	if (setns(fds[0], CLONE_NEWUSER) < 0) {
		reply(ctl, errno, -1);
		_exit(1);
	}
	close(fds[0]);
	if (fds[1] >= 0) {
		if (setns(fds[1], CLONE_NEWNET) < 0) {
			reply(ctl, 1000 + errno, -1);
			_exit(1);
		}
		close(fds[1]);
	}
	reply(ctl, 0, -1);
	for (;;) {
		int32_t req[3];
		ssize_t n = recv(ctl, req, sizeof req, 0);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) _exit(0); // EOF: ephem is done, or gone
		if (n != sizeof req) {
			reply(ctl, EINVAL, -1);
			continue;
		}
		int fd = socket(req[0], req[1] | SOCK_CLOEXEC, req[2]);
		if (fd < 0) {
			reply(ctl, errno, -1);
			continue;
		}
		reply(ctl, 0, fd);
		close(fd);
	}
}
