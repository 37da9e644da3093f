package e2eutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Debian's podman package (4.3) and uidmap (newuidmap, newgidmap, which
// rootless podman needs).
const (
	PodmanBinary    = "/usr/bin/podman"
	NewuidmapBinary = "/usr/bin/newuidmap"
)

// PodmanTestUser is the user whose rootless podman containers tests run.
const PodmanTestUser = "ephemtest"

// PodmanLimits are the flags every test container gets: runc on these
// machines refuses podman's default rlimits.
var PodmanLimits = []string{"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"}

// Podman runs podman as root (rootful), or as a user (rootless).
type Podman struct {
	// User is empty for rootful podman, else the user's name.
	User string
	// UID is the user's UID (0 for rootful).
	UID  int
	home string
}

// RequirePodman skips t unless podman and uidmap are installed, or fails it
// under CI (CI=true) or EPHEM_E2E=1.
func RequirePodman(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	for _, b := range []string{PodmanBinary, NewuidmapBinary} {
		if _, err := os.Stat(b); err != nil {
			msg := fmt.Sprintf("%s is missing: apt-get install -y --no-install-recommends podman uidmap", b)
			if os.Getenv("CI") == "true" || os.Getenv("EPHEM_E2E") == "1" {
				t.Fatal(msg + " (CI=true or EPHEM_E2E=1 is set, so this is a failure, not a skip)")
			}
			t.Skip(msg)
		}
	}
}

// RootfulPodman returns rootful podman.
func RootfulPodman(t testing.TB) *Podman {
	t.Helper()
	RequirePodman(t)
	return &Podman{}
}

// RootlessPodman returns rootless podman as PodmanTestUser, creating the
// user (with /etc/subuid and /etc/subgid ranges) and its runtime
// directory /run/user/UID if they are missing. It is idempotent.
func RootlessPodman(t testing.TB) *Podman {
	t.Helper()
	RequirePodman(t)
	u, err := user.Lookup(PodmanTestUser)
	if err != nil {
		MustRun(t, nil, "useradd", "--create-home", "--shell", "/bin/sh", PodmanTestUser)
		if u, err = user.Lookup(PodmanTestUser); err != nil {
			t.Fatalf("looking up %s after useradd: %v", PodmanTestUser, err)
		}
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, _ := os.ReadFile(f)
		if !bytes.Contains(b, []byte("\n"+PodmanTestUser+":")) && !bytes.HasPrefix(b, []byte(PodmanTestUser+":")) {
			flag := "--add-subuids"
			if f == "/etc/subgid" {
				flag = "--add-subgids"
			}
			MustRun(t, nil, "usermod", flag, "300000-365535", PodmanTestUser)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	run := "/run/user/" + u.Uid
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(run, uid, gid); err != nil {
		t.Fatal(err)
	}
	return &Podman{User: PodmanTestUser, UID: uid, home: u.HomeDir}
}

// Command returns the command that runs podman with args as p's user.
func (p *Podman) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, PodmanBinary, args...)
	if p.User != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.User, "--", "env",
			"HOME=" + p.home, "XDG_RUNTIME_DIR=/run/user/" + strconv.Itoa(p.UID), PodmanBinary}, args...)...)
	}
	cmd.Dir = "/"
	return cmd
}

// Run runs podman with args, fails t unless it exits 0, and returns its
// trimmed stdout.
func (p *Podman) Run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := p.Command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s podman %s: %v\n%s", p, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

func (p *Podman) String() string {
	if p.User == "" {
		return "rootful"
	}
	return "rootless (" + p.User + ")"
}

// Pull pulls ref from a loopback registry over plain HTTP.
func (p *Podman) Pull(t testing.TB, ref string) {
	t.Helper()
	p.Run(t, "pull", "-q", "--tls-verify=false", ref)
}

// Start runs a detached container called name from image with no
// network (its own network namespace, loopback up) and PodmanLimits, and
// returns its full ID and host PID. t's Cleanup removes it.
func (p *Podman) Start(t testing.TB, name, image string, args ...string) (id string, pid int) {
	t.Helper()
	t.Cleanup(func() { p.Remove(t, name) })
	run := append(append([]string{"run", "-d", "--name", name, "--network", "none"}, PodmanLimits...), image)
	id = p.Run(t, append(run, args...)...)
	pid = p.PID(t, name)
	MustRun(t, nil, "nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "link", "set", "lo", "up")
	return id, pid
}

// Create creates a container called name that is never started; t's
// Cleanup removes it.
func (p *Podman) Create(t testing.TB, name, image string) (id string) {
	t.Helper()
	t.Cleanup(func() { p.Remove(t, name) })
	return p.Run(t, append(append([]string{"create", "--name", name, "--network", "none"}, PodmanLimits...), image)...)
}

// PID returns the host PID of container name's init process (0 when it
// does not run).
func (p *Podman) PID(t testing.TB, name string) int {
	t.Helper()
	pid, err := strconv.Atoi(p.Run(t, "inspect", "-f", "{{.State.Pid}}", name))
	if err != nil {
		t.Fatalf("podman inspect %s: %v", name, err)
	}
	return pid
}

// Remove removes container name, running or not, if it exists.
func (p *Podman) Remove(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := p.Command(ctx, "rm", "-f", "-t", "0", "--ignore", name)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("%s podman rm %s: %v\n%s", p, name, err, stderr.String())
	}
}
