package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
)

var _ runtime.Inspector = (*Engine)(nil)

// nsTypes are the namespace types ephem ns reports, sorted by name.
var nsTypes = []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}

// Inspect implements runtime.Inspector: it reads the target's /proc
// entries and starts nothing. A debug container shares every namespace of
// the target but the mount namespace, which is its own (the PID namespace
// as --share-pid does by default).
func (e *Engine) Inspect(ctx context.Context, ref target.Ref) (*runtime.NamespaceReport, error) {
	if err := e.checkCaller(ctx, ref); err != nil { // root, or the owner (rootless.go)
		return nil, err
	}
	proc, err := e.resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref, err)
	}
	dir := "/proc/" + strconv.Itoa(proc.PID)
	r := &runtime.NamespaceReport{Target: ref.String(), PID: proc.PID, HostFrom: "PID 1"}
	host := "/proc/1/ns/"
	if _, err := os.Readlink(host + "net"); errors.Is(err, os.ErrPermission) {
		host, r.HostFrom = "/proc/self/ns/", "ephem"
	}
	for _, ns := range nsTypes {
		if _, err := os.Lstat("/proc/self/ns/" + ns); errors.Is(err, os.ErrNotExist) {
			continue // the kernel lacks it (time before 5.6)
		}
		n, err := namespace(host, proc.PID, ns)
		if err != nil {
			return nil, err
		}
		r.Namespaces = append(r.Namespaces, n)
	}
	status, err := readProc(proc.PID, "status")
	if err != nil {
		return nil, err
	}
	fields := statusFields(status)
	r.CapEff = fields["CapEff"]
	r.Seccomp = runtime.SeccompMode(fields["Seccomp"])
	for name, dst := range map[string]*[]string{"uid_map": &r.UIDMap, "gid_map": &r.GIDMap, "cgroup": &r.Cgroup} {
		b, err := readProc(proc.PID, name)
		if err != nil {
			return nil, err
		}
		*dst = lines(b, name != "cgroup")
	}
	if r.Root, err = os.Readlink(dir + "/root"); err != nil {
		return nil, procError(proc.PID, "root", err)
	}
	init := initOf(proc.PID, fields)
	if b, err := readProc(init, "cmdline"); err == nil {
		r.Init = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	// The report is only true while the target runs.
	if err := target.CheckAlive(proc.PID); err != nil {
		return nil, err
	}
	return r, nil
}

// namespace reports namespace type ns of pid beside the host's (in the
// directory host) and a debug container's.
func namespace(host string, pid int, ns string) (runtime.Namespace, error) {
	n := runtime.Namespace{Type: ns}
	var err error
	if n.Host, err = os.Readlink(host + ns); err != nil {
		return n, fmt.Errorf("%w: reading %s%s: %w", runtime.ErrOS, host, ns, err)
	}
	if n.Target, err = os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + ns); err != nil {
		return n, procError(pid, "ns/"+ns, err)
	}
	if ns != "mnt" {
		// Joined where it differs from ephem's own, which it is otherwise:
		// the target's either way.
		n.Debug, n.Shared = n.Target, true
	}
	return n, nil
}

// readProc reads /proc/PID/name.
func readProc(pid int, name string) ([]byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	if err != nil {
		return nil, procError(pid, name, err)
	}
	return b, nil
}

// procError says why /proc/PID/name could not be read: the process is
// gone, or ephem may not look.
func procError(pid int, name string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrInvalid):
		return fmt.Errorf("%w: process %d exited while ephem read it", target.ErrNotFound, pid)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: reading /proc/%d/%s: %w", runtime.ErrPermission, pid, name, err)
	}
	return fmt.Errorf("%w: reading /proc/%d/%s: %w", runtime.ErrOS, pid, name, err)
}

// statusFields parses /proc/PID/status into its "Name:\tvalue" fields.
func statusFields(b []byte) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// lines splits b into its non-empty lines, with runs of blanks squeezed to
// one space when squeeze is set (the kernel pads ID maps).
func lines(b []byte, squeeze bool) []string {
	out := []string{}
	for _, l := range strings.Split(string(b), "\n") {
		if squeeze {
			l = strings.Join(strings.Fields(l), " ")
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// initOf returns the host PID of PID 1 in pid's PID namespace: pid itself
// when it is that process (a container's main process is), else the
// process of that namespace whose innermost PID is 1. It returns pid when
// none is found (the namespace's init exited).
func initOf(pid int, status map[string]string) int {
	if f := strings.Fields(status["NSpid"]); len(f) > 0 && f[len(f)-1] == "1" {
		return pid
	}
	want, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return pid
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return pid
	}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err != nil || l != want {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		if f := strings.Fields(statusFields(b)["NSpid"]); len(f) > 0 && f[len(f)-1] == "1" {
			return n
		}
	}
	return pid
}
