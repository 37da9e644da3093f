package local_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestDockerTarget debugs a real Docker container running the shell-less
// workload, by name and by ID, through the Docker Engine API.
func TestDockerTarget(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["distroless"], "ephem/distroless:test")
	name := "ephem-e2e-web"
	id := e2eutil.DockerRun(t, host, "--name", name, "--hostname", "web", "ephem/distroless:test")
	pid := e2eutil.DockerPID(t, host, id)
	t.Setenv("DOCKER_HOST", host)

	// docker exec is useless: there is no shell in the image.
	r, _ := e2eutil.Run(t.Context(), e2eutil.DockerEnv(host), e2eutil.DockerClient, "exec", name, "sh", "-c", "true")
	if r.ExitCode == 0 {
		t.Fatalf("docker exec sh succeeded in a shell-less image")
	}

	out := f.debug(t, "docker://"+name, "sh", "-c", "wget -qO- localhost:80; echo; ls -l /proc/self/ns; ls /proc/1/root/; hostname; cat /etc/hostname")
	if !strings.Contains(out, "OK - GET: Request completed") {
		t.Errorf("wget localhost:80 did not reach the container's server:\n%s", out)
	}
	got, want := parseNS(out), nsLinks(t, itoa(pid))
	for _, ns := range []string{"net", "ipc", "uts", "pid"} {
		if got[ns] != want[ns] {
			t.Errorf("%s namespace = %s, want the container's %s", ns, got[ns], want[ns])
		}
	}
	if got["mnt"] == want["mnt"] {
		t.Errorf("the debug container shares the target's mount namespace")
	}
	if !strings.Contains(out, "server\n") || !strings.Contains(out, "web\nweb\n") {
		t.Errorf("want the container's /server under /proc/1/root and its hostname:\n%s", out)
	}
	// By ID too, with the command's exit code passed through.
	args := []string{"debug", "docker://" + id[:12], "-q", "--image", f.busybox, "--", "sh", "-c", "exit 9"}
	if r := f.ephem(t, args...); r.ExitCode != 9 {
		t.Errorf("by ID: exit %d, want 9 (stderr %q)", r.ExitCode, r.Stderr)
	}
	// Unknown and stopped containers: a stopped one's filesystem is at
	// /target (stopped_test.go).
	expectFailure(t, f, 66, []string{"no container", "docker ps"}, "debug", "docker://no-such-container", "--image", f.busybox, "--", "true")
	e2eutil.Docker(t, host, "stop", "-t", "1", name)
	if out := f.debug(t, "docker://"+name, "ls", "/target"); !strings.Contains(out, "server\n") {
		t.Errorf("stopped: want its /server under /target:\n%s", out)
	}
}

// TestDockerContainerStops: docker stop during a session ends it with the
// target-exited error.
func TestDockerContainerStops(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["distroless"], "ephem/distroless:test")
	id := e2eutil.DockerRun(t, host, "ephem/distroless:test")
	t.Setenv("DOCKER_HOST", host)
	cmd, stderr := startEphem(t, f, "debug", "docker://"+id, "-q", "--image", f.busybox, "--", "sleep", "3501")
	waitFor(t, 10*time.Second, "the command", func() bool { return len(procs("sleep 3501")) == 1 })
	e2eutil.Docker(t, host, "kill", id)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ephem kept running after the container stopped")
	}
	if code := cmd.ProcessState.ExitCode(); code != 75 {
		t.Errorf("exit %d (stderr %q), want 75", code, stderr)
	}
	assertClean(t, f, "sleep 3501")
}
