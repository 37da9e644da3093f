// cinit.h: the debug container's init, in C (cinit.c sets the container
// up, cuser.c resolves the command's user, csuper.c runs and supervises the
// command). The constructor
// (nsenter.c) enters ephem_init in the forked child; it never returns, so
// a session starts no Go runtime but the ephem client's.
#ifndef EPHEM_CINIT_H
#define EPHEM_CINIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// The config's record tags: each record is a tag byte, a little-endian
// uint32 length and that many bytes. config.go (encode) writes them;
// config_test.go checks that the two sides agree.
#define CFG_ARG 1       // one argument of the command, in order
#define CFG_ENV 2       // one KEY=VALUE of the environment, in order
#define CFG_CWD 3       // the working directory ("" or absent: /)
#define CFG_USER 4      // "uid[:gid]" or "name[:group]", resolved in the image
#define CFG_FLAGS 5     // uint32, CFLAG_* below
#define CFG_CAPS 6      // uint64: the container's capability set
#define CFG_SECCOMP 7   // struct sock_filter[]: the seccomp program
#define CFG_WINSIZE 8   // uint16 rows, uint16 columns
#define CFG_FILE 9      // a file written into the image: name, NUL, data
#define CFG_TARGET 10   // empty: the second descriptor is a stopped target's filesystem

#define CFLAG_NONROOT 1     // refuse a user that resolves to UID 0
#define CFLAG_NNP 2         // set no_new_privs
#define CFLAG_PRIVILEGED 4  // the host's /dev, a writable /sys
#define CFLAG_TTY 8         // a terminal for the command
#define CFLAG_STDIN 16      // keep standard input

struct cfile {
	const char *name;
	const char *data;
	size_t len;
};

struct cconfig {
	char **argv;  // NULL-terminated
	char **env;   // NULL-terminated, room for 4 more
	size_t nenv;
	const char *cwd;
	const char *user;
	uint32_t flags;
	uint64_t caps;
	const void *seccomp;
	size_t seccomp_len;
	uint16_t rows, cols;
	struct cfile *files;
	size_t nfiles;
	int target_fd; // -1: none
};

struct cuser {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	size_t ngroups;
	char home[4096];
};

// Shared by the halves of init (definitions in nsenter.c and cinit.c).
extern int ctl_fd;
__attribute__((noreturn, format(printf, 2, 3))) void fail(const char *kind, const char *fmt, ...);
__attribute__((noreturn, format(printf, 2, 3))) void fail_msg(const char *kind, const char *fmt, ...);
void json_escape(const char *in, char *out, size_t n);
// send_with_fd sends buf, and passfd unless negative, as one message.
int send_with_fd(int sock, const void *buf, size_t n, int passfd);
void send_json(int fd, const char *json, int passfd);
void send_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void drop_creds(const struct cuser *u, uint64_t caps, int nnp);
void resolve_user(const char *spec, struct cuser *u);

__attribute__((noreturn)) void ephem_init(void);
__attribute__((noreturn)) void run_and_supervise(struct cconfig *c, const struct cuser *u, int listener);

#endif
