// cuser.c: the debug container's init resolves the command's user in the
// image's own /etc/passwd and /etc/group, after the pivot (so never the
// host's), as runc does with moby/sys/user, and bounded against a hostile
// image.
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cinit.h"
#include "nsenter.h"

// open_db opens one of the image's user databases for reading, or returns
// NULL: only a regular file (a hostile image's FIFO would block init, its
// link to /dev/zero never end), read at most MAX_DB bytes (see next_line).
#define MAX_DB (4 << 20)
static FILE *open_db(const char *path) {
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) close(fd);
	return f;
}

// next_line reads the next line of f into line, within MAX_DB bytes in all.
static char *next_line(FILE *f, char *line, int n, size_t *total) {
	if (!f || *total > MAX_DB || !fgets(line, n, f)) return NULL;
	*total += strlen(line);
	return line;
}

// parse_id reads a decimal ID, the whole of s, or returns -1.
static long long parse_id(const char *s) {
	if (!*s || strlen(s) > 10) return -1;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p)) return -1;
	long long v = atoll(s);
	return v <= 0x7fffffff ? v : -1;
}

// field returns the i-th ':'-separated field of line (modified), or "".
static char *field(char **f, int n, int i) { return i < n ? f[i] : ""; }

static int split(char *line, char **f, int max) {
	int n = 0;
	line[strcspn(line, "\n")] = 0;
	for (char *p = line; n < max; p++) {
		f[n++] = p;
		p = strchrnul(p, ':');
		if (!*p) break;
		*p = 0;
	}
	return n;
}

// resolve_user finds the command's user as runc (moby/sys/user) does:
// spec is "user[:group]", each a name in the image's /etc/passwd and
// /etc/group or a number; a matched user's groups are its supplementary
// groups unless a group is given; the first match wins.
void resolve_user(const char *spec, struct cuser *u) {
	char user[256] = "", group[256] = "", line[4096], *f[8], matched[256] = "";
	const char *colon = strchr(spec ? spec : "", ':');
	if (spec) {
		snprintf(user, sizeof user, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
		if (colon) snprintf(group, sizeof group, "%s", colon + 1);
	}
	long long uid_arg = parse_id(user), gid_arg = parse_id(group);
	u->uid = 0;
	u->gid = 0;
	u->ngroups = 0;
	strcpy(u->home, "/");
	FILE *pw = open_db("/etc/passwd");
	int found = 0;
	size_t total = 0;
	while (next_line(pw, line, sizeof line, &total)) {
		int n = split(line, f, 7);
		if (n < 1 || !*f[0] || f[0][0] == '#') continue;
		long long uid = parse_id(field(f, n, 2));
		int match = !*user ? uid == (long long)u->uid : uid_arg >= 0 ? uid == uid_arg : !strcmp(f[0], user);
		if (!match) continue;
		found = 1;
		snprintf(matched, sizeof matched, "%s", f[0]);
		u->uid = uid < 0 ? 0 : (uid_t)uid;
		long long gid = parse_id(field(f, n, 3));
		u->gid = gid < 0 ? 0 : (gid_t)gid;
		if (*field(f, n, 5)) snprintf(u->home, sizeof u->home, "%s", field(f, n, 5));
		break;
	}
	if (pw) fclose(pw);
	if (!found && *user) {
		if (uid_arg < 0)
			fail_msg(KIND_USAGE, "resolving user \"%s\" in the image: unable to find user %s: no matching entries in passwd file", spec, user);
		u->uid = (uid_t)uid_arg;
	}
	if (!*group && !*matched) return;
	FILE *gr = open_db("/etc/group");
	int gfound = 0;
	total = 0;
	while (next_line(gr, line, sizeof line, &total)) {
		int n = split(line, f, 4);
		if (n < 1 || !*f[0] || f[0][0] == '#') continue;
		long long gid = parse_id(field(f, n, 2));
		if (gid < 0) continue;
		if (*group) {
			if (gid_arg >= 0 ? gid == gid_arg : !strcmp(f[0], group)) {
				u->gid = (gid_t)gid;
				gfound = 1;
				break;
			}
			continue;
		}
		for (char *m = field(f, n, 3), *save = NULL, *tok = strtok_r(m, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (strcmp(tok, matched) || u->ngroups == sizeof u->groups / sizeof u->groups[0]) continue;
			u->groups[u->ngroups++] = (gid_t)gid;
			break;
		}
	}
	if (gr) fclose(gr);
	if (*group && !gfound) {
		if (gid_arg < 0)
			fail_msg(KIND_USAGE, "resolving user \"%s\" in the image: unable to find group %s: no matching entries in group file", spec, group);
		u->gid = (gid_t)gid_arg;
	}
}
