package local_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestByNameTarget debugs containers given by a bare NAME, looked up in
// the test dockerd and a standalone containerd: a name only Docker has, a
// nerdctl name only containerd has, a name both have (ambiguous, 64), an
// unknown name (66), and a runtime that is not there.
func TestByNameTarget(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["distroless"], "ephem/distroless:test")
	cd := e2eutil.StartContainerd(t)
	const ns = "ephem-e2e-byname"
	image := cd.ImportImage(t, ns, f.images["distroless"], "ephem/distroless")

	suffix := randomID(t)[:8]
	inDocker, inContainerd, inBoth := "byname-d-"+suffix, "byname-c-"+suffix, "byname-b-"+suffix
	dockerID := e2eutil.DockerRun(t, host, "--name", inDocker, "ephem/distroless:test")
	dockerPID := e2eutil.DockerPID(t, host, dockerID)
	e2eutil.DockerRun(t, host, "--name", inBoth, "ephem/distroless:test")
	ctrID := randomID(t)
	ctrPID := cd.Run(t, ns, image, ctrID, map[string]string{"nerdctl/name": inContainerd})
	bothID := randomID(t)
	cd.Create(t, ns, image, bothID, map[string]string{"nerdctl/name": inBoth})
	t.Setenv("DOCKER_HOST", host)
	t.Setenv("CONTAINERD_ADDRESS", cd.Socket)
	t.Setenv("CONTAINERD_NAMESPACE", "")

	// check debugs name, which must be found as ref, in pid's namespaces.
	check := func(t *testing.T, name, ref string, pid int) {
		t.Helper()
		args := []string{"debug", name, "-q", "--image", f.busybox, "--", "sh", "-c", "ls -l /proc/self/ns; ls /proc/1/root/"}
		r := f.ephem(t, args...)
		if r.ExitCode != 0 {
			t.Fatalf("ephem %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.ExitCode, r.Stdout, r.Stderr)
		}
		if want := `"` + name + `" is ` + ref; !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr %q does not say %q", r.Stderr, want)
		}
		got, want := parseNS(r.Stdout), nsLinks(t, itoa(pid))
		for _, n := range []string{"net", "ipc", "uts", "pid"} {
			if got[n] != want[n] {
				t.Errorf("%s: %s namespace = %s, want the container's %s", name, n, got[n], want[n])
			}
		}
		if got["mnt"] == "" || got["mnt"] == want["mnt"] {
			t.Errorf("%s: mnt namespace = %q, want one of its own (the container's is %s)", name, got["mnt"], want["mnt"])
		}
		if !strings.Contains(r.Stdout, "server\n") {
			t.Errorf("%s: want the container's /server under /proc/1/root:\n%s", name, r.Stdout)
		}
	}
	dbg := func(name string) []string { return []string{"debug", name, "--image", f.busybox, "--", "true"} }

	t.Run("Docker", func(t *testing.T) { check(t, inDocker, "docker://"+inDocker, dockerPID) })
	t.Run("DockerIDPrefix", func(t *testing.T) {
		// An all-digit word is a PID's mistake, not a name: lengthen the
		// prefix until it has a letter.
		n := 12
		for strings.Trim(dockerID[:n], "0123456789") == "" {
			n++
		}
		check(t, dockerID[:n], "docker://"+inDocker, dockerPID)
	})
	t.Run("Containerd", func(t *testing.T) { check(t, inContainerd, "containerd://"+ns+"/"+ctrID, ctrPID) })
	t.Run("Ambiguous", func(t *testing.T) {
		expectFailure(t, f, 64, []string{"docker://" + inBoth, "containerd://" + ns + "/" + bothID, "names 2 containers"}, dbg(inBoth)...)
	})
	t.Run("Unknown", func(t *testing.T) {
		expectFailure(t, f, 66, []string{`no container "byname-none-` + suffix + `" in docker or containerd`}, dbg("byname-none-"+suffix)...)
	})
	t.Run("DockerAbsent", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "docker.sock")
		t.Setenv("DOCKER_HOST", "unix://"+missing)
		check(t, inContainerd, "containerd://"+ns+"/"+ctrID, ctrPID)
		expectFailure(t, f, 66, []string{`no container "` + inDocker + `" in containerd`, "not reachable: docker (unix://" + missing},
			dbg(inDocker)...)
	})
}
