package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// ViaProcNote ends the Description of a process found from /proc because
// its runtime's API did not answer.
const ViaProcNote = "(found without the runtime's API)"

// Runtime says where a container runtime leaves traces of a container on
// the host, for finding it when the runtime's API does not answer.
type Runtime struct {
	// TaskNamespace is the containerd namespace the runtime's tasks live
	// in ("moby" for Docker): its shims' bundles hold each task's init.pid.
	TaskNamespace string
	// CgroupPrefixes precede the container ID in a cgroup's name
	// ("docker-" for docker-ID.scope). A cgroup named by the ID alone
	// (/docker/ID, /NAMESPACE/ID, /kubepods/.../ID) matches for every
	// runtime.
	CgroupPrefixes []string
}

// Runtimes' traces: the cgroup names of systemd's and cgroupfs' drivers.
var (
	DockerRuntime = Runtime{TaskNamespace: "moby", CgroupPrefixes: []string{"docker-"}}
	PodmanRuntime = Runtime{CgroupPrefixes: []string{"libpod-"}}
	CRIORuntime   = Runtime{CgroupPrefixes: []string{"crio-"}}
)

// ContainerdRuntime is containerd's trace of namespace ns: tasks under
// STATE/io.containerd.runtime.v2.task/ns, cgroups /ns/ID, or
// cri-containerd-ID.scope for Kubernetes' containers.
func ContainerdRuntime(ns string) Runtime {
	return Runtime{TaskNamespace: ns, CgroupPrefixes: []string{"cri-containerd-"}}
}

// taskDir is where containerd's runc shims keep their bundles, under a
// containerd state directory.
const taskDir = "io.containerd.runtime.v2.task"

// stateDirs are the usual containerd state directories: containerd's own,
// and the one of the containerd that dockerd starts itself.
var stateDirs = []string{"/run/containerd", "/run/docker/containerd/daemon"}

// IsFullID reports whether s is a full container ID: 64 lowercase hex digits.
func IsFullID(s string) bool {
	if len(s) != 64 {
		return false
	}
	return strings.IndexFunc(s, func(c rune) bool { return (c < '0' || c > '9') && (c < 'a' || c > 'f') }) < 0
}

// SocketDown reports whether err says that a runtime's socket did not
// answer: missing, refused, or silent until a timeout.
func SocketDown(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// ResolveDockerOrProc is ResolveDocker that, when the Docker daemon does
// not answer, still finds a container given by its full ID from /proc.
func ResolveDockerOrProc(ctx context.Context, r Ref) (Process, error) {
	p, err := ResolveDocker(ctx, r)
	if err != nil && errors.Is(err, ErrUnreachable) && SocketDown(err) && IsFullID(r.Name) {
		return resolveWithoutAPI(err, "docker container "+r.Name, r.Name, DockerRuntime)
	}
	return p, err
}

// resolveWithoutAPI finds container id from /proc after its runtime's API
// failed with apiErr, which it returns if /proc has no trace of it either.
func resolveWithoutAPI(apiErr error, desc, id string, rt Runtime) (Process, error) {
	pid, err := FindContainerProcess(rt, id)
	if err != nil {
		// The runtime is what to fix: keep its error (and exit code).
		return Process{}, fmt.Errorf("%w; no process in /proc belongs to container %s either", apiErr, id)
	}
	return Process{PID: pid, Description: desc + " " + ViaProcNote, ViaProc: true}, CheckAlive(pid)
}

// FindContainerProcess returns the host PID of the init process of the
// container whose full ID is id, without asking its runtime: from the
// init.pid of the container's containerd task when the runtime uses
// containerd, else from the cgroups in /proc.
func FindContainerProcess(rt Runtime, id string) (int, error) {
	return procScan{proc: "/proc", stateDirs: stateDirs, cgroupRoots: cgroupRoots}.find(rt, id)
}

// procScan reads the traces of containers under a /proc, state
// directories and cgroup hierarchies (other ones in tests).
type procScan struct {
	proc        string
	stateDirs   []string
	cgroupRoots []string // none: no probe, /proc is scanned
}

func (s procScan) find(rt Runtime, id string) (int, error) {
	if !IsFullID(id) {
		return 0, fmt.Errorf("%w: %q is not a full container ID (64 hex digits), which finding it without the runtime needs", ErrInvalid, id)
	}
	// The cheap traces first: the task's init.pid under the usual state
	// directories, then the container's own cgroup directory.
	if pid, ok := s.taskInitPID(rt, id, s.stateTaskRoots()); ok {
		return pid, nil
	}
	if pid, ok := s.probeCgroups(rt, id); ok {
		return pid, nil
	}
	// Then those that read every process: the bundles of the running
	// shims (any state directory), and every process's cgroups.
	if pid, ok := s.taskInitPID(rt, id, s.shimTaskRoots()); ok {
		return pid, nil
	}
	return s.scanCgroups(rt, id)
}

// taskInitPID returns the PID in the init.pid of the container's task
// bundle under one of roots, if it is still the task's.
func (s procScan) taskInitPID(rt Runtime, id string, roots []string) (int, bool) {
	if rt.TaskNamespace == "" {
		return 0, false
	}
	for _, root := range roots {
		if pid, ok := s.initPID(filepath.Join(root, rt.TaskNamespace, id), rt, id); ok {
			return pid, true
		}
	}
	return 0, false
}

// stateTaskRoots returns the shims' bundle roots under the usual state
// directories.
func (s procScan) stateTaskRoots() []string {
	roots := make([]string, 0, len(s.stateDirs))
	for _, d := range s.stateDirs {
		roots = append(roots, filepath.Join(d, taskDir))
	}
	return roots
}

// shimTaskRoots returns the bundle roots the running shims work in (any
// state directory), but for the usual ones (stateTaskRoots).
func (s procScan) shimTaskRoots() []string {
	var roots []string
	seen := map[string]bool{}
	for _, r := range s.stateTaskRoots() {
		seen[r] = true
	}
	add := func(root string) {
		if !seen[root] {
			seen[root] = true
			roots = append(roots, root)
		}
	}
	for _, pid := range s.pids() {
		comm, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(pid), "comm"))
		if err != nil || !strings.HasPrefix(string(comm), "containerd-shim") {
			continue
		}
		// The shim works in its bundle, ROOT/NAMESPACE/ID.
		cwd, err := os.Readlink(filepath.Join(s.proc, strconv.Itoa(pid), "cwd"))
		if root := filepath.Dir(filepath.Dir(cwd)); err == nil && filepath.Base(root) == taskDir {
			add(root)
		}
	}
	return roots
}

// initPID reads the init.pid in a task's bundle and returns the PID if
// that process is still the task's: in the container's cgroup, or a child
// of the shim that works in the bundle (a stale file's PID may have been
// reused by another process).
func (s procScan) initPID(bundle string, rt Runtime, id string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(bundle, "init.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	dir := filepath.Join(s.proc, strconv.Itoa(pid))
	if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil && cgroupMatches(string(cg), rt, id) {
		return pid, true
	}
	cwd, err := os.Readlink(filepath.Join(s.proc, strconv.Itoa(s.ppid(pid)), "cwd"))
	return pid, err == nil && cwd == bundle
}

// scanCgroups finds the processes in the container's cgroup and returns
// its init: the one whose parent is outside the cgroup (the lowest such).
func (s procScan) scanCgroups(rt Runtime, id string) (int, error) {
	members := map[int]bool{}
	var pids []int
	for _, pid := range s.pids() {
		b, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(pid), "cgroup"))
		if err == nil && cgroupMatches(string(b), rt, id) {
			members[pid] = true
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return 0, fmt.Errorf("%w: no process in %s belongs to container %s", ErrNotFound, s.proc, id)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		if !members[s.ppid(pid)] {
			return pid, nil
		}
	}
	return pids[0], nil
}

// cgroupMatches reports whether a /proc/PID/cgroup file puts the process
// in container id's cgroup.
func cgroupMatches(cgroup string, rt Runtime, id string) bool {
	for _, line := range strings.Split(cgroup, "\n") {
		// HIERARCHY:CONTROLLERS:PATH
		_, rest, _ := strings.Cut(line, ":")
		_, path, _ := strings.Cut(rest, ":")
		for _, el := range strings.Split(path, "/") {
			el = strings.TrimSuffix(el, ".scope")
			if el == id {
				return true
			}
			for _, p := range rt.CgroupPrefixes {
				if el == p+id {
					return true
				}
			}
		}
	}
	return false
}

// pids lists the processes in /proc.
func (s procScan) pids() []int {
	ents, err := os.ReadDir(s.proc)
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ppid returns the parent of pid, or 0.
func (s procScan) ppid(pid int) int {
	b, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
