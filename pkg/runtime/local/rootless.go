package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/sys/unix"
)

// Rootless ephem: a user other than root debugs a process in a user
// namespace that user owns (rootless podman, unshare --user
// --map-root-user, bubblewrap), with no setuid helper and no daemon. The
// owner of a user namespace holds every capability in it and in the
// namespaces it owns, so the constructor joins the target's user namespace
// first, then the namespaces that namespace owns, and only then creates
// the debug container's mount namespace and mounts the image there
// (overlayfs in a user namespace, Linux 5.11+). Namespaces the target
// shares with the host (typically ipc and cgroup) are already ephem's own;
// one owned by another user namespace cannot be joined without root and is
// left out with a note on the log (net and pid are refused instead).

// rootless reports whether the local engine runs without root.
func rootless() bool { return os.Geteuid() != 0 }

func init() {
	if rootless() {
		SessionsDir = userSessionsDir()
	}
}

// userSessionsDir is where a user other than root keeps its sessions:
// $XDG_RUNTIME_DIR/ephem/sessions, else the per-user cache's, else under
// /run/user/UID (never a shared temporary directory another user could
// create first).
func userSessionsDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ephem", "sessions")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ephem", "sessions")
	}
	return filepath.Join("/run/user", strconv.Itoa(os.Geteuid()), "ephem", "sessions")
}

// checkCaller lets root through; anyone else only to a target in a user
// namespace the caller owns (directly or through its ancestors), which is
// what joining it without privileges needs. It fails with ErrPermission
// ("needs root", exit 77) otherwise.
func (e *Engine) checkCaller(ctx context.Context, ref target.Ref) error {
	if !rootless() {
		return nil
	}
	proc, err := target.Resolve(ctx, ref)
	if err != nil {
		// Say "needs root" for what only root may resolve (a runtime's
		// socket); let the rest be reported as it is by Debug.
		if errors.Is(err, runtime.ErrPermission) {
			return fmt.Errorf("%w: needs root: resolving %s: %w", runtime.ErrPermission, ref, err)
		}
		return nil
	}
	if proc.Stopped != nil {
		return fmt.Errorf("%w: needs root: %s runs nothing, and debugging it in new namespaces needs root", runtime.ErrPermission, proc.Description)
	}
	return checkOwned(proc.PID)
}

// checkOwned fails with ErrPermission unless pid is in a user namespace
// this process's effective user owns.
func checkOwned(pid int) error {
	// A namespace the kernel does not let this user open (EACCES: another
	// user's process) is not the user's either.
	if owned, err := ownsUserNS(pid); err == nil && owned {
		return nil
	}
	return fmt.Errorf("%w: needs root: pid:%d runs as uid %s in a user namespace you do not own: run ephem as root, or debug a process in a user namespace you created (rootless podman, unshare --user --map-root-user)",
		runtime.ErrPermission, pid, statusUID(pid))
}

// ownsUserNS walks up from pid's user namespace to this process's own and
// says whether the child of this namespace on that path belongs to the
// effective user: its owner then has every capability in all of them.
func ownsUserNS(pid int) (bool, error) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &self); err != nil {
		return false, err
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	for range 64 { // user namespaces nest 32 deep at most
		parent, err := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		if err != nil {
			_ = unix.Close(fd)
			return false, nil // the root, or outside our own: not ours
		}
		var st unix.Stat_t
		if err := unix.Fstat(parent, &st); err != nil {
			_ = unix.Close(fd)
			_ = unix.Close(parent)
			return false, err
		}
		if st.Dev == self.Dev && st.Ino == self.Ino {
			owner, err := unix.IoctlGetUint32(fd, unix.NS_GET_OWNER_UID)
			_ = unix.Close(fd)
			_ = unix.Close(parent)
			return err == nil && int(owner) == os.Geteuid(), err
		}
		_ = unix.Close(fd)
		fd = parent
	}
	_ = unix.Close(fd)
	return false, nil
}

// statusUID returns pid's real uid as /proc/PID/status shows it, or "?".
func statusUID(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		var uid int
		if _, err := fmt.Sscanf(line, "Uid:\t%d", &uid); err == nil {
			return strconv.Itoa(uid)
		}
	}
	return "?"
}

// rootlessOnly keeps, for an unprivileged join, the user namespace and the
// namespaces it owns. Any other namespace the target does not share with
// ephem cannot be joined without root: net and pid (when shared) are
// refused, the rest left out with a note on log.
func (t *openTarget) rootlessOnly(log io.Writer) error {
	u := t.index("user")
	if u < 0 {
		return fmt.Errorf("%w: needs root: pid:%d shares ephem's user namespace", runtime.ErrPermission, t.pid)
	}
	var user unix.Stat_t
	if err := unix.Fstat(int(t.files[u].Fd()), &user); err != nil {
		return fmt.Errorf("%w: reading the user namespace of pid:%d: %w", runtime.ErrOS, t.pid, err)
	}
	var ns []string
	var files []*os.File
	for i, n := range t.ns {
		if i == u || ownedBy(t.files[i], user) {
			ns, files = append(ns, n), append(files, t.files[i])
			continue
		}
		if n == "net" || n == "pid" {
			return fmt.Errorf("%w: needs root: the %s namespace of pid:%d belongs to a user namespace other than its own", runtime.ErrPermission, n, t.pid)
		}
		fmt.Fprintf(log, "ephem: rootless: not joining the %s namespace of pid:%d (another user namespace owns it)\n", n, t.pid)
		t.files[i].Close()
	}
	// order put the user namespace before those it owns, and the rest are
	// gone: it comes first, as without root nothing may be joined before.
	t.ns, t.files = ns, files
	return nil
}

// rootlessEnv is what start adds to the constructor's environment without
// root: join first, then mount, and read opaque directories from user.*
// xattrs when the layers were unpacked without root.
func rootlessEnv() []string {
	if !rootless() {
		return nil
	}
	env := []string{nsenter.EnvRootless + "=1"}
	if image.Unprivileged() {
		env = append(env, nsenter.EnvUserXattr+"=1")
	}
	return env
}
