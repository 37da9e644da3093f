package target

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCgroup makes the cgroup directory rel under root listing pids.
func fakeCgroup(t *testing.T, root, rel string, pids ...string) {
	t.Helper()
	dir := filepath.Join(root, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strings.Join(pids, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestProbeCgroups(t *testing.T) {
	p := newFakeProc(t)
	p.add(1, 0, "systemd", "/init.scope")
	p.add(40, 1, "shim", "/system.slice/containerd.service")
	p.add(50, 40, "server", "/docker/"+idA) // the container's init
	p.add(45, 50, "worker", "/docker/"+idA) // a child with a lower PID
	p.add(46, 50, "nested", "/docker/"+idA+"/sub")
	p.add(70, 40, "crio-init", "/kubepods/besteffort/pod1/crio-"+idB+".scope")
	absent := filepath.Join(t.TempDir(), "absent")
	root := t.TempDir()
	fakeCgroup(t, root, "", "1", "40")
	fakeCgroup(t, root, "docker/"+idA, "45", "50")
	fakeCgroup(t, root, "docker/"+idA+"/sub", "46")
	fakeCgroup(t, root, "kubepods/besteffort/pod1/crio-"+idB+".scope", "70")
	s := procScan{proc: p.root, cgroupRoots: []string{absent, root}}
	if pid, ok := s.probeCgroups(DockerRuntime, idA); !ok || pid != 50 {
		t.Errorf("probeCgroups(docker/ID) = %d, %v; want 50", pid, ok)
	}
	// Under no usual parent: found by the walk.
	if pid, ok := s.probeCgroups(CRIRuntime, idB); !ok || pid != 70 {
		t.Errorf("probeCgroups(kubepods/.../crio-ID.scope) = %d, %v; want 70", pid, ok)
	}
	// No such cgroup: the caller scans /proc.
	if _, ok := s.probeCgroups(DockerRuntime, strings.Repeat("cd", 32)); ok {
		t.Errorf("probeCgroups(unknown ID) found a process")
	}
	// A cgroup whose process's own cgroup does not name the container
	// (stale, or another runtime's layout) is not trusted.
	idC := strings.Repeat("c3", 32)
	p.add(80, 1, "other", "/elsewhere")
	fakeCgroup(t, root, "docker/"+idC, "80")
	if pid, ok := s.probeCgroups(DockerRuntime, idC); ok {
		t.Errorf("probeCgroups = %d for a process whose /proc/PID/cgroup is elsewhere", pid)
	}
	// find: the probe first, then the scan of /proc.
	p.add(90, 1, "server", "/custom/"+idC)
	if pid, err := s.find(DockerRuntime, idC); err != nil || pid != 90 {
		t.Errorf("find after a failed probe = %d, %v; want 90 from the scan", pid, err)
	}
	if pid, err := s.find(DockerRuntime, idA); err != nil || pid != 50 {
		t.Errorf("find = %d, %v; want 50", pid, err)
	}
}
