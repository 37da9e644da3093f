package target

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// cgroupRoots are the cgroup hierarchies probed for a container's own
// cgroup directory, in order: cgroup v1 controllers that every runtime
// joins (the pids controller has the fewest files per directory), and the
// unified hierarchy (cgroup v2 at /sys/fs/cgroup). A root that is not a
// mounted hierarchy (no cgroup.procs) is passed over.
var cgroupRoots = []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"}

// cgroupParents are the usual parents of a container's cgroup, relative to
// a hierarchy's root, probed before walking the hierarchy: cgroupfs
// drivers (/docker/ID, /NAMESPACE/ID, /libpod_parent/libpod-ID), and
// systemd's slices (system.slice/docker-ID.scope,
// machine.slice/libpod-ID.scope).
var cgroupParents = []string{"docker", "system.slice", "machine.slice", "libpod_parent", ""}

// Bounds of the walk of a hierarchy for a container's cgroup that is not
// under a usual parent (kubepods/.../crio-ID.scope, a --cgroup-parent): a
// larger tree is left to the scan of /proc.
const (
	cgroupWalkDepth = 6
	cgroupWalkDirs  = 4000
)

// probeCgroups finds container id's init process from its cgroup directory
// instead of reading every /proc/PID/cgroup: the processes its cgroup.procs
// (and those of its sub-cgroups) list, of which init is the lowest PID
// whose parent is not one of them (scanCgroups' rule). The PID is checked
// against its own /proc/PID/cgroup. ok is false when no hierarchy has the
// container's cgroup, for the caller to scan /proc.
func (s procScan) probeCgroups(rt Runtime, id string) (pid int, ok bool) {
	names := map[string]bool{id: true, id + ".scope": true}
	for _, p := range rt.CgroupPrefixes {
		names[p+id], names[p+id+".scope"] = true, true
	}
	for _, root := range s.cgroupRoots {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		dir := probeParents(root, rt, names)
		if dir == "" {
			dir = walkCgroups(root, names)
		}
		if dir == "" {
			continue
		}
		if pid := s.cgroupInit(dir); pid > 0 {
			if cg, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(pid), "cgroup")); err == nil && cgroupMatches(string(cg), rt, id) {
				return pid, true
			}
		}
		return 0, false
	}
	return 0, false
}

// probeParents returns the container's cgroup directory under one of the
// usual parents (and the runtime's containerd namespace), or "".
func probeParents(root string, rt Runtime, names map[string]bool) string {
	parents := cgroupParents
	if rt.TaskNamespace != "" {
		parents = append([]string{rt.TaskNamespace}, parents...)
	}
	for _, parent := range parents {
		for name := range names {
			dir := filepath.Join(root, parent, name)
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
				return dir
			}
		}
	}
	return ""
}

// walkCgroups walks the hierarchy at root, breadth first and bounded, for
// a directory with one of names; "" when there is none.
func walkCgroups(root string, names map[string]bool) string {
	level, seen := []string{root}, 0
	for depth := 0; depth < cgroupWalkDepth && len(level) > 0; depth++ {
		var next []string
		for _, dir := range level {
			if seen++; seen > cgroupWalkDirs {
				return ""
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if !e.IsDir() {
					continue
				}
				if names[e.Name()] {
					return filepath.Join(dir, e.Name())
				}
				next = append(next, filepath.Join(dir, e.Name()))
			}
		}
		level = next
	}
	return ""
}

// cgroupInit returns the init process of the cgroup at dir and its
// sub-cgroups: the lowest PID whose parent is not in them; 0 when the
// cgroup has no process.
func (s procScan) cgroupInit(dir string) int {
	members := map[int]bool{}
	var pids []int
	var read func(dir string, depth int)
	read = func(dir string, depth int) {
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 0 && !members[pid] {
					members[pid] = true
					pids = append(pids, pid)
				}
			}
		}
		if depth >= cgroupWalkDepth {
			return
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.IsDir() {
				read(filepath.Join(dir, e.Name()), depth+1)
			}
		}
	}
	read(dir, 0)
	sort.Ints(pids)
	for _, pid := range pids {
		if !members[s.ppid(pid)] {
			return pid
		}
	}
	return 0
}
