package local_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestContainerdTarget debugs a container started with ctr run on a
// standalone containerd, by nerdctl name, ID and ID prefix through
// containerd's API, then by full ID from /proc once containerd is killed.
func TestContainerdTarget(t *testing.T) {
	f := setup(t)
	cd := e2eutil.StartContainerd(t)
	const ns = "ephem-e2e"
	image := cd.ImportImage(t, ns, f.images["distroless"], "ephem/distroless")
	id := randomID(t)
	pid := cd.Run(t, ns, image, id, map[string]string{"nerdctl/name": "web"})
	// A container with no task, whose ID shares id's first 8 digits.
	idle := id[:8] + randomID(t)[8:]
	cd.Create(t, ns, image, idle, map[string]string{"nerdctl/name": "idle"})
	t.Setenv("CONTAINERD_ADDRESS", cd.Socket)

	check := func(t *testing.T, ref string) {
		t.Helper()
		out := f.debug(t, ref, "sh", "-c", "wget -qO- 127.0.0.1:80; echo; ls -l /proc/self/ns")
		if !strings.Contains(out, "OK - GET: Request completed") {
			t.Errorf("%s: wget 127.0.0.1:80 did not reach the container's server:\n%s", ref, out)
		}
		got, want := parseNS(out), nsLinks(t, itoa(pid))
		if got["net"] != want["net"] {
			t.Errorf("%s: net namespace = %s, want the container's %s", ref, got["net"], want["net"])
		}
		if got["mnt"] == "" || got["mnt"] == want["mnt"] {
			t.Errorf("%s: mnt namespace = %q, want one of its own (the container's is %s)", ref, got["mnt"], want["mnt"])
		}
	}
	t.Run("ByName", func(t *testing.T) { check(t, "containerd://"+ns+"/web") })
	t.Run("ByID", func(t *testing.T) { check(t, "containerd://"+ns+"/"+id) })
	t.Run("ByIDPrefix", func(t *testing.T) { check(t, "containerd://"+ns+"/"+id[:12]) })
	t.Run("NamespaceFromEnvironment", func(t *testing.T) {
		t.Setenv("CONTAINERD_NAMESPACE", ns)
		check(t, "containerd://web")
	})
	t.Run("Errors", func(t *testing.T) {
		dbg := func(ref string) []string { return []string{"debug", ref, "--image", f.busybox, "--", "true"} }
		expectFailure(t, f, 66, []string{`no container "nope"`, "ctr -n " + ns + " containers ls"}, dbg("containerd://"+ns+"/nope")...)
		// No task: its snapshot at /target (stopped_test.go).
		if out := f.debug(t, "containerd://"+ns+"/idle", "ls", "/target"); !strings.Contains(out, "server\n") {
			t.Errorf("idle: want its /server under /target:\n%s", out)
		}
		expectFailure(t, f, 66, []string{"namespace default"}, dbg("containerd://web")...)
		expectFailure(t, f, 64, []string{"containerd://" + ns + "/" + id, "containerd://" + ns + "/" + idle},
			dbg("containerd://"+ns+"/"+id[:8])...)
		missing := filepath.Join(t.TempDir(), "no.sock")
		t.Setenv("CONTAINERD_ADDRESS", missing)
		expectFailure(t, f, 68, []string{missing, "CONTAINERD_ADDRESS"}, dbg("containerd://"+ns+"/web")...)
	})
	if t.Failed() {
		return
	}

	// The daemon goes; the shim keeps the task. A full ID still resolves.
	cd.KillDaemon(t)
	t.Run("WithoutTheDaemon", func(t *testing.T) {
		check(t, "containerd://"+ns+"/"+id)
		expectFailure(t, f, 68, []string{cd.Socket, "connection refused"},
			"debug", "containerd://"+ns+"/web", "--image", f.busybox, "--", "true")
	})

	cd.Stop(t)
	if p := cd.Processes(); len(p) > 0 {
		t.Errorf("processes of containerd's tasks left after Stop: %v", p)
	}
	if m := cd.Mounts(); len(m) > 0 {
		t.Errorf("mounts left after Stop: %v", m)
	}
	if _, err := os.Stat(cd.Dir); !os.IsNotExist(err) {
		t.Errorf("%s left after Stop: %v", cd.Dir, err)
	}
}

// randomID returns a random 64-hex-digit container ID.
func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestDockerWithoutTheDaemon: with DOCKER_HOST pointing at a socket that
// does not answer, a Docker container given by its full ID is still found
// from /proc; by name it is not (exit 68).
func TestDockerWithoutTheDaemon(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["distroless"], "ephem/distroless:test")
	name := "ephem-e2e-nodaemon"
	id := e2eutil.DockerRun(t, host, "--name", name, "ephem/distroless:test")
	pid := e2eutil.DockerPID(t, host, id)
	missing := filepath.Join(t.TempDir(), "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+missing)

	out := f.debug(t, "docker://"+id, "sh", "-c", "ls -l /proc/self/ns; ls /proc/1/root/")
	got, want := parseNS(out), nsLinks(t, itoa(pid))
	for _, ns := range []string{"net", "ipc", "uts", "pid"} {
		if got[ns] != want[ns] {
			t.Errorf("%s namespace = %s, want the container's %s", ns, got[ns], want[ns])
		}
	}
	if !strings.Contains(out, "server\n") {
		t.Errorf("want the container's /server under /proc/1/root:\n%s", out)
	}
	// It says so, naming the process it found.
	if r := f.ephem(t, "debug", "docker://"+id, "-q", "--image", f.busybox, "--", "true"); r.ExitCode != 0 ||
		!strings.Contains(r.Stderr, "the runtime did not answer") || !strings.Contains(r.Stderr, "pid "+itoa(pid)) {
		t.Errorf("exit %d stderr %q, want a notice naming pid %d", r.ExitCode, r.Stderr, pid)
	}
	expectFailure(t, f, 68, []string{missing, "DOCKER_HOST"}, "debug", "docker://"+name, "--image", f.busybox, "--", "true")
	expectFailure(t, f, 68, []string{"/proc", "DOCKER_HOST"}, "debug", "docker://"+randomID(t), "--image", f.busybox, "--", "true")
}
