package e2eutil

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/testimages"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DockerClient is Debian's Docker client (20.10). The daemon of
// hack/dockerd.sh speaks API 1.41, which newer clients on PATH refuse
// without DOCKER_API_VERSION.
const DockerClient = "/usr/bin/docker"

// DockerAPIVersion is the API version of Debian's dockerd.
const DockerAPIVersion = "1.41"

// dockerRunDir is where hack/dockerd.sh keeps its socket and pid file; the
// lock files that count the test binaries using the daemon live there too.
func dockerRunDir() string {
	if d := os.Getenv("EPHEM_TEST_DOCKER_RUN"); d != "" {
		return d
	}
	return "/run/ephem-test"
}

var dockerd shared[string]

// StartDockerd makes sure the test daemon of hack/dockerd.sh runs and
// returns its DOCKER_HOST (unix:///run/ephem-test/docker.sock). It starts
// the daemon once per test binary. When the binary ends (see Main), the
// daemon is stopped if test binaries started it and no other test binary
// still uses it; a daemon that was already running (started by hack/test.sh
// or by hand) is left running.
func StartDockerd(t testing.TB) (dockerHost string) {
	t.Helper()
	RequireRoot(t)
	return dockerd.get(t, func() (string, func(), error) {
		return AcquireDockerd(context.Background())
	})
}

// AcquireDockerd is StartDockerd for programs that are not tests (such as
// hack/bench): it returns the daemon's DOCKER_HOST and a release function
// to call when done.
func AcquireDockerd(ctx context.Context) (host string, release func(), err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", nil, err
	}
	script := filepath.Join(root, "hack", "dockerd.sh")
	runDir := dockerRunDir()
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("creating %s: %w", runDir, err)
	}
	users := filepath.Join(runDir, "dockerd.users")
	marker := filepath.Join(runDir, "dockerd.started-by-tests")
	// A shared lock on users for as long as this process uses the daemon:
	// whoever releases last (and can take it exclusively) stops it.
	f, err := os.OpenFile(users, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("opening %s: %w", users, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("locking %s: %w", users, err)
	}
	status, err := Run(ctx, nil, "bash", script, "status")
	if err != nil {
		f.Close()
		return "", nil, fmt.Errorf("hack/dockerd.sh status: %w", err)
	}
	wasRunning := status.ExitCode == 0
	start, err := Run(ctx, nil, "bash", script, "start")
	if err == nil && start.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", start.ExitCode, strings.TrimSpace(start.Stderr))
	}
	if err != nil {
		f.Close()
		return "", nil, fmt.Errorf("starting the test Docker daemon (hack/dockerd.sh start): %w", err)
	}
	// The marker says test binaries started the daemon, so the last of them
	// stops it. hack/dockerd.sh removes it whenever it starts a daemon.
	if !wasRunning {
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			f.Close()
			return "", nil, fmt.Errorf("writing %s: %w", marker, err)
		}
	}
	host, err = dockerHostFrom(start.Stdout)
	if err != nil {
		f.Close()
		return "", nil, err
	}
	release = func() {
		f.Close() // drops the shared lock
		releaseDockerd(script, users, marker)
	}
	return host, release, nil
}

// dockerHostFrom returns the value of the last line of out, which
// hack/dockerd.sh start prints as DOCKER_HOST=....
func dockerHostFrom(out string) (string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	host, ok := strings.CutPrefix(last, "DOCKER_HOST=")
	if !ok || host == "" {
		return "", fmt.Errorf("hack/dockerd.sh start printed %q last, want a DOCKER_HOST= line", last)
	}
	return host, nil
}

// releaseDockerd stops the daemon when this process was its last user and
// test binaries started it.
func releaseDockerd(script, users, marker string) {
	f, err := os.OpenFile(users, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2eutil: opening %s: %v\n", users, err)
		return
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return // another process still uses the daemon; the last one stops it
	}
	if _, err := os.Stat(marker); err != nil {
		return // started outside the tests: not ours to stop
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, nil, "bash", script, "stop")
	if err != nil || r.ExitCode != 0 {
		fmt.Fprintf(os.Stderr, "e2eutil: hack/dockerd.sh stop: %v (exit %d): %s\n", err, r.ExitCode, r.Stderr)
		return
	}
	_ = os.Remove(marker)
}

// DockerEnv returns the environment for Debian's docker client to talk to
// host.
func DockerEnv(host string) []string {
	return []string{"DOCKER_HOST=" + host, "DOCKER_API_VERSION=" + DockerAPIVersion}
}

// Docker runs Debian's docker client against host with args, fails t
// unless it exits 0, and returns its trimmed stdout.
func Docker(t testing.TB, host string, args ...string) string {
	t.Helper()
	return MustRun(t, DockerEnv(host), DockerClient, args...)
}

// DockerLoadImage writes img as a docker tarball (go-containerregistry's
// tarball.Write) tagged tag, such as "ephem/busybox:test", and loads it
// into the daemon at host.
func DockerLoadImage(t testing.TB, host string, img v1.Image, tag string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := testimages.WriteDockerTarball(path, tag, img); err != nil {
		t.Fatal(err)
	}
	Docker(t, host, "load", "-q", "-i", path)
}

// DockerRun runs `docker run -d --network none ARGS...` on the daemon at
// host and returns the new container's id. The daemon has no bridge, so
// every container has no network; args must not name one. The container is
// removed (with its volumes) in t's Cleanup.
func DockerRun(t testing.TB, host string, args ...string) (id string) {
	t.Helper()
	for _, a := range args {
		if a == "--net" || a == "--network" || strings.HasPrefix(a, "--net=") || strings.HasPrefix(a, "--network=") {
			t.Fatalf("DockerRun: containers always run with --network none; got %q", a)
		}
	}
	id = Docker(t, host, append([]string{"run", "-d", "--network", "none"}, args...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := Run(ctx, DockerEnv(host), DockerClient, "rm", "-f", "-v", id)
		if err != nil || (r.ExitCode != 0 && !strings.Contains(r.Stderr, "No such container")) {
			t.Errorf("removing container %s: %v (exit %d): %s", id, err, r.ExitCode, r.Stderr)
		}
	})
	return id
}

// DockerPID returns the host PID of the main process of the running
// container id (docker inspect's .State.Pid).
func DockerPID(t testing.TB, host, id string) int {
	t.Helper()
	out := Docker(t, host, "inspect", "--format", "{{.State.Pid}}", id)
	pid, err := strconv.Atoi(out)
	if err != nil || pid <= 0 {
		t.Fatalf("docker inspect %s: .State.Pid is %q, want a positive PID (is the container running?)", id, out)
	}
	return pid
}
