package target

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var (
	idA = strings.Repeat("a1", 32)
	idB = strings.Repeat("b2", 32)
)

func TestCgroupMatches(t *testing.T) {
	containerd := ContainerdRuntime("test")
	for _, tc := range []struct {
		name   string
		cgroup string
		rt     Runtime
		want   bool
	}{
		{"docker cgroupfs", "12:pids:/docker/" + idA + "\n0::/docker/" + idA, DockerRuntime, true},
		{"docker systemd", "0::/system.slice/docker-" + idA + ".scope", DockerRuntime, true},
		{"docker, another ID", "0::/docker/" + idB, DockerRuntime, false},
		{"docker, a prefix of the ID", "0::/docker/" + idA[:12], DockerRuntime, false},
		{"containerd namespace", "4:memory:/test/" + idA, containerd, true},
		{"containerd CRI systemd", "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + idA + ".scope", containerd, true},
		{"containerd CRI cgroupfs", "0::/kubepods/besteffort/pod1/" + idA, containerd, true},
		{"podman", "0::/machine.slice/libpod-" + idA + ".scope", PodmanRuntime, true},
		{"podman's conmon", "0::/machine.slice/libpod-conmon-" + idA + ".scope", PodmanRuntime, false},
		{"crio", "0::/kubepods.slice/crio-" + idA + ".scope", CRIORuntime, true},
		{"crio's conmon", "0::/kubepods.slice/crio-conmon-" + idA + ".scope", CRIORuntime, false},
		{"another runtime's prefix", "0::/system.slice/docker-" + idA + ".scope", PodmanRuntime, false},
		{"host", "0::/user.slice/user-0.slice/session-1.scope", DockerRuntime, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cgroupMatches(tc.cgroup, tc.rt, idA); got != tc.want {
				t.Errorf("cgroupMatches(%q) = %v, want %v", tc.cgroup, got, tc.want)
			}
		})
	}
}

// fakeProc builds a /proc with processes: pid -> (ppid, cgroup path).
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) fakeProc { return fakeProc{t: t, root: t.TempDir()} }

func (p fakeProc) add(pid, ppid int, comm, cgroup string) {
	p.t.Helper()
	dir := filepath.Join(p.root, strconv.Itoa(pid))
	for name, body := range map[string]string{
		"cgroup": "0::" + cgroup + "\n",
		"status": "Name:\t" + comm + "\nPPid:\t" + strconv.Itoa(ppid) + "\n",
		"comm":   comm + "\n",
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

func TestScanCgroupsPicksInit(t *testing.T) {
	p := newFakeProc(t)
	p.add(1, 0, "systemd", "/init.scope")
	p.add(40, 1, "containerd-shim", "/system.slice/containerd.service")
	p.add(50, 40, "server", "/test/"+idA) // the container's init
	p.add(45, 50, "worker", "/test/"+idA) // a child with a lower PID (PIDs wrap)
	p.add(60, 1, "other", "/test/"+idB)   // another container
	p.add(70, 40, "exec", "/test/"+idA)   // an exec'd process: parent outside too
	s := procScan{proc: p.root}
	pid, err := s.find(ContainerdRuntime("test"), idA)
	if err != nil || pid != 50 {
		t.Errorf("find = %d, %v; want 50 (the lowest process whose parent is outside the cgroup)", pid, err)
	}
	if _, err := s.find(DockerRuntime, strings.Repeat("cd", 32)); !errors.Is(err, ErrNotFound) {
		t.Errorf("find(unknown ID) = %v, want ErrNotFound", err)
	}
	if _, err := s.find(DockerRuntime, idA[:12]); !errors.Is(err, ErrInvalid) {
		t.Errorf("find(short ID) = %v, want ErrInvalid", err)
	}
}

func TestFindByInitPID(t *testing.T) {
	p := newFakeProc(t)
	state, other := t.TempDir(), t.TempDir()
	bundle := func(root, ns, id string, pid int) string {
		dir := filepath.Join(root, taskDir, ns, id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "init.pid"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	shim := func(pid int, cwd string) {
		p.add(pid, 1, "containerd-shim", "/system.slice/containerd.service")
		if err := os.Symlink(cwd, filepath.Join(p.root, strconv.Itoa(pid), "cwd")); err != nil {
			t.Fatal(err)
		}
	}
	idC := strings.Repeat("c3", 32)
	p.add(1, 0, "systemd", "/init.scope")
	// Tasks whose cgroup does not name them: their shim's bundle does.
	shim(40, bundle(state, "test", idA, 50))
	p.add(50, 40, "server", "/custom/a")
	shim(41, bundle(other, "moby", idB, 60)) // a state directory found through its shim
	p.add(60, 41, "server", "/custom/b")
	bundle(state, "test", idC, 1) // stale: PID 1 is not the task's
	bundle(state, "test", strings.Repeat("d4", 32), 99)
	s := procScan{proc: p.root, stateDirs: []string{state}}
	for _, tc := range []struct {
		name string
		rt   Runtime
		id   string
		want int
	}{
		{"usual state dir", ContainerdRuntime("test"), idA, 50},
		{"another namespace", ContainerdRuntime("other"), idA, 0},
		{"through a shim's bundle", DockerRuntime, idB, 60},
		{"reused PID", ContainerdRuntime("test"), idC, 0},
		{"gone", ContainerdRuntime("test"), strings.Repeat("d4", 32), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid, err := s.find(tc.rt, tc.id)
			if tc.want == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("find = %d, %v; want ErrNotFound", pid, err)
				}
				return
			}
			if err != nil || pid != tc.want {
				t.Errorf("find = %d, %v; want %d", pid, err, tc.want)
			}
		})
	}
}

func TestSocketDownAndIDs(t *testing.T) {
	if !IsFullID(idA) || IsFullID(idA[:63]) || IsFullID(strings.ToUpper(idA)) || IsFullID("web") {
		t.Errorf("IsFullID is wrong")
	}
	_, err := os.ReadFile(filepath.Join(t.TempDir(), "none"))
	if !SocketDown(err) || SocketDown(nil) || SocketDown(errors.New("other")) {
		t.Errorf("SocketDown is wrong")
	}
}

func TestDockerWithoutDaemon(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	ctx := t.Context()
	// No process has this ID: the daemon's error stays, saying /proc was searched.
	_, err := ResolveDockerOrProc(ctx, Ref{Scheme: SchemeDocker, Name: idA})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no process in /proc") {
		t.Errorf("ResolveDockerOrProc(full ID) = %v, want ErrUnreachable saying /proc was searched", err)
	}
	// A name is not looked for in /proc.
	_, err = ResolveDockerOrProc(ctx, Ref{Scheme: SchemeDocker, Name: "web"})
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "/proc") {
		t.Errorf("ResolveDockerOrProc(web) = %v, want ErrUnreachable only", err)
	}
}
