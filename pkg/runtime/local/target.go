package local

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/sys/unix"
)

// nsOrder is the order namespaces are opened in; pid and time last, as
// they take effect only for the child forked afterwards. order then moves
// the user namespace to its place.
var nsOrder = []string{"user", "cgroup", "ipc", "uts", "net", "time", "pid"}

// openTarget is a live target held by descriptors: a pidfd and one
// descriptor per namespace to join, so a recycled PID cannot swap the
// target between the check and the join.
type openTarget struct {
	pid   int
	pidfd int
	ns    []string
	files []*os.File
}

// open opens pid's namespaces. sharePID says whether to join its PID
// namespace.
func open(pid int, sharePID bool) (*openTarget, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("%w: process %d has exited: pick a running process", target.ErrNotFound, pid)
		}
		return nil, fmt.Errorf("%w: opening process %d: %w", runtime.ErrOS, pid, err)
	}
	t := &openTarget{pid: pid, pidfd: pidfd}
	for _, ns := range nsOrder {
		if ns == "pid" && !sharePID {
			continue
		}
		// A namespace ephem is in already is not joined: there is nothing
		// to join, and after the target's user namespace the kernel would
		// refuse one the initial user namespace owns.
		if same, err := sameNamespace(pid, ns); err != nil || same {
			continue // the kernel lacks it, or there is nothing to join
		}
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/" + ns)
		if err != nil {
			t.close()
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: process %d exited while ephem opened it", target.ErrNotFound, pid)
			}
			return nil, fmt.Errorf("%w: opening the %s namespace of process %d: %w", runtime.ErrPermission, ns, pid, err)
		}
		t.ns = append(t.ns, ns)
		t.files = append(t.files, f)
	}
	if !t.alive() {
		t.close()
		return nil, fmt.Errorf("%w: process %d exited while ephem opened it", target.ErrNotFound, pid)
	}
	t.order()
	return t, nil
}

// order puts the namespaces that the target's user namespace does not own
// first (they are joined with ephem's own privileges: a target in a user
// namespace of its own may share the host's network, or one the initial
// user namespace owns), then the user namespace, then those it owns, as
// runc does.
func (t *openTarget) order() {
	u := t.index("user")
	if u < 0 {
		return
	}
	var user unix.Stat_t
	if err := unix.Fstat(int(t.files[u].Fd()), &user); err != nil {
		return
	}
	var before, after []int
	for i := range t.ns {
		switch {
		case i == u:
		case ownedBy(t.files[i], user):
			after = append(after, i)
		default:
			before = append(before, i)
		}
	}
	ns, files := make([]string, 0, len(t.ns)), make([]*os.File, 0, len(t.files))
	for _, i := range append(append(before, u), after...) {
		ns, files = append(ns, t.ns[i]), append(files, t.files[i])
	}
	t.ns, t.files = ns, files
}

// index returns the position of namespace ns in t's list, or -1.
func (t *openTarget) index(ns string) int {
	for i, n := range t.ns {
		if n == ns {
			return i
		}
	}
	return -1
}

// ownedBy says whether the namespace f belongs to the user namespace user.
// A kernel that cannot say (before 4.9) keeps the old order: user first.
func ownedBy(f *os.File, user unix.Stat_t) bool {
	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		return true
	}
	defer func() { _ = unix.Close(fd) }()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return true
	}
	return st.Dev == user.Dev && st.Ino == user.Ino
}

// rootIDs returns "uid:gid", the host IDs that the root of the target's
// own user namespace maps to, or "" when it shares the host's.
func (t *openTarget) rootIDs() string {
	if t.index("user") < 0 {
		return ""
	}
	uid, ok1 := hostID("/proc/" + strconv.Itoa(t.pid) + "/uid_map")
	gid, ok2 := hostID("/proc/" + strconv.Itoa(t.pid) + "/gid_map")
	if !ok1 || !ok2 {
		return ""
	}
	return strconv.Itoa(uid) + ":" + strconv.Itoa(gid)
}

// hostID returns the host ID that ID 0 maps to in an ID map file.
func hostID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" {
			n, err := strconv.Atoi(f[1])
			return n, err == nil
		}
	}
	return 0, false
}

// sameNamespace says whether pid shares this process's namespace ns.
func sameNamespace(pid int, ns string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat("/proc/self/ns/"+ns, &a); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/"+ns, &b); err != nil {
		return false, err
	}
	return a.Ino == b.Ino && a.Dev == b.Dev, nil
}

// alive says whether the process the pidfd holds still runs. A pidfd
// becomes readable when its process exits, zombie or not.
func (t *openTarget) alive() bool {
	fds := []unix.PollFd{{Fd: int32(t.pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 0
}

// joinSpec is the constructor's "ns:fd" list, given the descriptor number
// the first namespace file gets in the child.
func (t *openTarget) joinSpec(firstFD int) string {
	parts := make([]string, len(t.ns))
	for i, ns := range t.ns {
		parts[i] = ns + ":" + strconv.Itoa(firstFD+i)
	}
	return strings.Join(parts, ",")
}

// exited returns a channel closed when the target exits.
func (t *openTarget) exited() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(t.pidfd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, -1)
			if err == unix.EINTR || (err == nil && n == 0) {
				continue
			}
			close(ch)
			return
		}
	}()
	return ch
}

func (t *openTarget) close() {
	for _, f := range t.files {
		f.Close()
	}
	t.files = nil
}

// defaultHosts is the /etc/hosts of a target that has none, as container
// runtimes write one for every container.
const defaultHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// readTargetFiles returns the target's name-resolution files, so tools in
// the debug container resolve names as the target does.
func readTargetFiles(pid int) map[string][]byte {
	out := map[string][]byte{"/etc/hosts": []byte(defaultHosts)}
	for _, name := range []string{"/etc/resolv.conf", "/etc/hosts", "/etc/hostname"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/root" + name)
		if err == nil && len(b) < 1<<20 {
			out[name] = b
		}
	}
	return out
}
