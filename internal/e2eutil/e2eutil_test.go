package e2eutil_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

func TestMain(m *testing.M) { e2eutil.Main(m) }

func nsLink(t *testing.T, pid int, ns string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	if err != nil {
		t.Fatalf("reading %s namespace of %d: %v", ns, pid, err)
	}
	return l
}

// TestDockerRunFindsPID runs a real container on the test daemon and finds
// its process through docker inspect.
func TestDockerRunFindsPID(t *testing.T) {
	host := e2eutil.StartDockerd(t)
	if !strings.HasPrefix(host, "unix://") {
		t.Fatalf("StartDockerd = %q, want a unix:// DOCKER_HOST", host)
	}
	e2eutil.DockerLoadImage(t, host, e2eutil.Image(t, "busybox"), "ephem/busybox:test")
	id := e2eutil.DockerRun(t, host, "ephem/busybox:test", "sleep", "300")
	pid := e2eutil.DockerPID(t, host, id)

	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("reading cgroup of container process %d: %v", pid, err)
	}
	if !strings.Contains(string(cg), id) {
		t.Errorf("/proc/%d/cgroup = %q, want it to name container %s", pid, cg, id)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "sleep" {
		t.Errorf("/proc/%d/comm = %q (%v), want sleep", pid, comm, err)
	}
	for _, ns := range []string{"net", "pid", "mnt", "uts", "ipc"} {
		if nsLink(t, pid, ns) == nsLink(t, os.Getpid(), ns) {
			t.Errorf("container process shares the test's %s namespace", ns)
		}
	}
	// --network none: the container has only a loopback interface.
	links := e2eutil.Docker(t, host, "exec", id, "ls", "/sys/class/net")
	if links != "lo" {
		t.Errorf("container network interfaces = %q, want only lo", links)
	}
}

func TestDockerRunRejectsNetwork(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		e2eutil.DockerRun(ft, "unix:///nonexistent", "--network=host", "busybox")
	}()
	if !ft.failed {
		t.Error("DockerRun accepted --network=host")
	}
}

// fatalRecorder records Fatal instead of ending the test.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(string, ...any) { f.failed = true; panic("fatal") }

func TestStartTarget(t *testing.T) {
	tg := e2eutil.StartTarget(t)
	for _, ns := range []string{"net", "pid", "uts", "ipc"} {
		if nsLink(t, tg.PID, ns) == nsLink(t, os.Getpid(), ns) {
			t.Errorf("target shares the test's %s namespace", ns)
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tg.PID))
	if err != nil {
		t.Fatal(err)
	}
	// NSpid lists the PID in each nested namespace: the innermost is 1.
	var nspid string
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			nspid = strings.TrimSpace(v)
		}
	}
	if f := strings.Fields(nspid); len(f) != 2 || f[1] != "1" {
		t.Errorf("NSpid of target = %q, want the host PID then 1", nspid)
	}
}

func TestPushImage(t *testing.T) {
	e2eutil.RequireRoot(t)
	addr := e2eutil.StartRegistry(t)
	ref := e2eutil.PushImage(t, addr, "ephem/busybox", e2eutil.Image(t, "busybox"))
	if want := addr + "/ephem/busybox:test"; ref != want {
		t.Errorf("PushImage = %q, want %q", ref, want)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(r); err != nil {
		t.Errorf("HEAD %s after push: %v", ref, err)
	}
}
