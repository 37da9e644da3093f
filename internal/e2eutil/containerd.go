package e2eutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ephem-dev/ephem/internal/testimages"
)

// Debian's containerd package (1.6) provides both.
const (
	ContainerdBinary = "/usr/bin/containerd"
	CtrBinary        = "/usr/bin/ctr"
)

// Containerd is a standalone containerd with its own root, state and
// socket under a test directory (not the system's or the cluster's).
type Containerd struct {
	// Dir holds config.toml, root/, state/ and the socket.
	Dir string
	// Socket is the daemon's gRPC socket ($CONTAINERD_ADDRESS).
	Socket string
	cmd    *exec.Cmd
	waited chan struct{}
	// tasks are the namespace/ID of the containers Run started.
	tasks []string
}

// RequireContainerd skips t unless containerd and ctr are installed, or
// fails it under CI (CI=true) or EPHEM_E2E=1.
func RequireContainerd(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	for _, b := range []string{ContainerdBinary, CtrBinary} {
		if _, err := os.Stat(b); err != nil {
			msg := fmt.Sprintf("%s is missing: apt-get install -y containerd", b)
			if os.Getenv("CI") == "true" || os.Getenv("EPHEM_E2E") == "1" {
				t.Fatal(msg + " (CI=true or EPHEM_E2E=1 is set, so this is a failure, not a skip)")
			}
			t.Skip(msg)
		}
	}
}

// StartContainerd starts Debian's containerd with a four-line config in a
// new temporary directory and waits until it answers. Everything it
// started is stopped and removed in t's Cleanup (see Stop).
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	RequireContainerd(t)
	dir, err := os.MkdirTemp("", "ephem-e2e-containerd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Dir: dir, Socket: filepath.Join(dir, "containerd.sock"), waited: make(chan struct{})}
	config := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	c.cmd = exec.Command(ContainerdBinary, "--config", filepath.Join(dir, "config.toml"))
	c.cmd.Stdout, c.cmd.Stderr = log, log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.waited) }()
	t.Cleanup(func() { c.Stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := Run(context.Background(), nil, CtrBinary, "-a", c.Socket, "version")
		if err == nil && r.ExitCode == 0 {
			return c
		}
		if time.Now().After(deadline) {
			logText, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd did not answer on %s within 20s: %s\n%s", c.Socket, r.Stderr, logText)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Ctr runs ctr against the daemon in namespace ns, fails t unless it exits
// 0, and returns its trimmed stdout.
func (c *Containerd) Ctr(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return MustRun(t, nil, CtrBinary, append([]string{"-a", c.Socket, "-n", ns}, args...)...)
}

// ImportImage imports img into namespace ns as NAME:test (ctr images
// import of a tar of an OCI layout) and returns that reference.
func (c *Containerd) ImportImage(t testing.TB, ns string, img v1.Image, name string) string {
	t.Helper()
	layout := filepath.Join(t.TempDir(), "layout")
	if err := testimages.WriteLayout(layout, img, testimages.Tag); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "layout.tar")
	MustRun(t, nil, "tar", "-C", layout, "-cf", tarball, ".")
	c.Ctr(t, ns, "images", "import", "--base-name", name, tarball)
	return name + ":" + testimages.Tag
}

// Run starts a container from image with `ctr run -d`, with labels, brings
// the loopback of its network namespace up and returns its task's host PID.
func (c *Containerd) Run(t testing.TB, ns, image, id string, labels map[string]string, args ...string) int {
	t.Helper()
	run := []string{"run", "-d"}
	for _, k := range sortedKeys(labels) {
		run = append(run, "--label", k+"="+labels[k])
	}
	c.tasks = append(c.tasks, ns+"/"+id)
	c.Ctr(t, ns, append(append(run, image, id), args...)...)
	b, err := os.ReadFile(c.bundle(ns, id) + "/init.pid")
	if err != nil {
		t.Fatalf("reading the init.pid of containerd task %s/%s: %v", ns, id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("init.pid of %s/%s: %v", ns, id, err)
	}
	MustRun(t, nil, "nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "link", "set", "lo", "up")
	return pid
}

// Create creates a container with no task (not running).
func (c *Containerd) Create(t testing.TB, ns, image, id string, labels map[string]string) {
	t.Helper()
	args := []string{"containers", "create"}
	for _, k := range sortedKeys(labels) {
		args = append(args, "--label", k+"="+labels[k])
	}
	c.Ctr(t, ns, append(args, image, id)...)
}

func (c *Containerd) bundle(ns, id string) string {
	return filepath.Join(c.Dir, "state", "io.containerd.runtime.v2.task", ns, id)
}

// KillDaemon kills containerd itself; the shims keep their tasks running.
func (c *Containerd) KillDaemon(t testing.TB) {
	t.Helper()
	_ = c.cmd.Process.Kill()
	<-c.waited
}

// Stop removes everything the daemon started: it kills each task's
// processes and shim (whether or not the daemon still runs), stops the
// daemon, unmounts what is mounted under Dir, removes the tasks' cgroups
// and Dir. It may be called more than once.
func (c *Containerd) Stop(t testing.TB) {
	t.Helper()
	for _, pid := range c.Processes() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = c.cmd.Process.Kill()
	<-c.waited
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Processes()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	mounts := c.Mounts()
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", mounts[i], err)
		}
	}
	for _, task := range c.tasks {
		ns, _, _ := strings.Cut(task, "/")
		for _, d := range []string{task, ns} {
			paths, _ := filepath.Glob("/sys/fs/cgroup/*/" + d)
			for _, p := range paths {
				_ = os.Remove(p) // empty cgroups only; the namespace's once its tasks' are gone
			}
		}
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Errorf("removing %s: %v", c.Dir, err)
	}
}

// Processes returns the host PIDs of the shims serving this daemon and of
// the processes of the tasks Run started.
func (c *Containerd) Processes() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		cgroup, _ := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		mine := strings.Contains(string(cmdline), c.Socket)
		for _, task := range c.tasks {
			mine = mine || strings.Contains(string(cgroup), ":/"+task+"\n")
		}
		if mine && pid != c.cmd.Process.Pid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Mounts returns the mount points under Dir, in mount order.
func (c *Containerd) Mounts() []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], c.Dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
