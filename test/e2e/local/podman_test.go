package local_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestPodmanTarget debugs podman containers (Debian's podman 4.3, no
// podman service) found from podman's storage: rootful by name, full ID
// and ID prefix; a test user's rootless one as root and as that user; by a
// bare NAME; an exited rootful one and a never started rootless one
// read-only at /target; and the errors: a name in both
// storages (64, listing both), an unknown name or user (66), a user with
// no storage (68), another user's container as a non-root user (77), a
// container killed mid-session (75).
func TestPodmanTarget(t *testing.T) {
	f := setup(t)
	rootful, rootless := e2eutil.RootfulPodman(t), e2eutil.RootlessPodman(t)
	image := e2eutil.PushImage(t, f.registry, "ephem/distroless", f.images["distroless"])
	rootful.Pull(t, image)
	rootless.Pull(t, image)

	s := randomID(t)[:8]
	web, mine, both, gone, stopped := "pm-web-"+s, "pm-mine-"+s, "pm-both-"+s, "pm-gone-"+s, "pm-stopped-"+s
	webID, webPID := rootful.Start(t, web, image)
	_, minePID := rootless.Start(t, mine, image)
	rootful.Start(t, both, image)
	rootless.Start(t, both, image)
	t.Cleanup(func() { rootful.Remove(t, stopped) })
	rootful.Run(t, append(append([]string{"run", "-d", "--name", stopped, "--network", "none"}, e2eutil.PodmanLimits...),
		image, "-addr", "127.0.0.1:99999")...) // exits 1 at once
	rootful.Run(t, "wait", stopped)

	// check debugs ref and finds pid's server, files and namespaces.
	check := func(t *testing.T, ref string, pid int, stderr string) {
		t.Helper()
		args := []string{"debug", ref, "--image", f.busybox, "--", "sh", "-c",
			"wget -qO- 127.0.0.1:80; echo; ls -l /proc/self/ns; ls /proc/1/root/"}
		r := f.ephem(t, args...)
		if r.ExitCode != 0 {
			t.Fatalf("ephem %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.ExitCode, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "OK - GET: Request completed") {
			t.Errorf("%s: wget 127.0.0.1:80 did not reach the container's server:\n%s", ref, r.Stdout)
		}
		if !strings.Contains(r.Stdout, "server\n") {
			t.Errorf("%s: want the container's /server under /proc/1/root:\n%s", ref, r.Stdout)
		}
		got, want := parseNS(r.Stdout), nsLinks(t, itoa(pid))
		for _, n := range []string{"net", "ipc", "uts", "pid"} {
			if got[n] != want[n] {
				t.Errorf("%s: %s namespace = %s, want the container's %s", ref, n, got[n], want[n])
			}
		}
		if got["mnt"] == "" || got["mnt"] == want["mnt"] {
			t.Errorf("%s: mnt namespace = %q, want one of its own (the container's is %s)", ref, got["mnt"], want["mnt"])
		}
		if stderr != "" && !strings.Contains(r.Stderr, stderr) {
			t.Errorf("%s: stderr %q does not say %q", ref, r.Stderr, stderr)
		}
	}
	dbg := func(ref string) []string { return []string{"debug", ref, "--image", f.busybox, "--", "true"} }

	t.Run("RootfulByName", func(t *testing.T) { check(t, "podman://"+web, webPID, "") })
	t.Run("RootfulQualified", func(t *testing.T) { check(t, "podman://root/"+web, webPID, "") })
	t.Run("RootfulByFullID", func(t *testing.T) { check(t, "podman://"+webID, webPID, "") })
	t.Run("RootfulByIDPrefix", func(t *testing.T) { check(t, "podman://"+webID[:12], webPID, "") })
	t.Run("RootlessAsRoot", func(t *testing.T) {
		check(t, "podman://"+mine, minePID, "")
		check(t, "podman://"+e2eutil.PodmanTestUser+"/"+mine, minePID, "")
	})
	t.Run("BareName", func(t *testing.T) {
		check(t, web, webPID, `"`+web+`" is podman://root/`+web)
		check(t, mine, minePID, `"`+mine+`" is podman://`+e2eutil.PodmanTestUser+"/"+mine)
	})
	t.Run("Stopped", func(t *testing.T) {
		r := f.ephem(t, "debug", "podman://"+stopped, "--image", f.busybox, "--", "ls", "/target")
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "server\n") || !strings.Contains(r.Stderr, "exited with code 1") {
			t.Errorf("stopped container: exit %d, want 0 with its files at /target and its exit code on stderr\nstdout: %s\nstderr: %s",
				r.ExitCode, r.Stdout, r.Stderr)
		}
	})
	t.Run("RootlessCreated", func(t *testing.T) {
		created := "pm-created-" + s
		rootless.Create(t, created, image)
		r := f.ephem(t, "debug", "podman://"+e2eutil.PodmanTestUser+"/"+created, "--image", f.busybox, "--", "ls", "/target")
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "server\n") || !strings.Contains(r.Stderr, "created, never started") {
			t.Errorf("created rootless container: exit %d, want 0 with its files at /target and its state on stderr\nstdout: %s\nstderr: %s",
				r.ExitCode, r.Stdout, r.Stderr)
		}
	})
	t.Run("Ambiguous", func(t *testing.T) {
		refs := []string{"podman://" + e2eutil.PodmanTestUser + "/" + both, "podman://root/" + both}
		expectFailure(t, f, 64, append([]string{"names 2 podman containers"}, refs...), dbg("podman://"+both)...)
		expectFailure(t, f, 64, append([]string{"names 2 containers"}, refs...), dbg(both)...)
	})
	t.Run("Unknown", func(t *testing.T) {
		expectFailure(t, f, 66, []string{`no podman container "pm-none-` + s + `" in the rootful storage`, "podman ps -a"},
			dbg("podman://pm-none-"+s)...)
		expectFailure(t, f, 66, []string{`no container "pm-none-` + s + `" in `, "podman"}, dbg("pm-none-"+s)...)
		expectFailure(t, f, 66, []string{`no user "nouser-` + s + `"`}, dbg("podman://nouser-"+s+"/"+web)...)
	})
	t.Run("NoStorage", func(t *testing.T) {
		expectFailure(t, f, 68, []string{"no rootless podman storage of user nobody", "is podman installed?"}, dbg("podman://nobody/"+web)...)
	})
	t.Run("NotRoot", func(t *testing.T) {
		bin, cache := userFiles(t, f, rootless)
		run := func(ref string, cmd ...string) e2eutil.Result {
			r, err := e2eutil.Run(t.Context(), nil, "runuser", append([]string{"-u", rootless.User, "--", "env",
				"HOME=/", "XDG_RUNTIME_DIR=/run/user/" + strconv.Itoa(rootless.UID), "EPHEM_CACHE_DIR=" + cache,
				bin, "debug", ref, "-q", "--image", f.busybox, "--"}, cmd...)...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		r := run("podman://root/"+web, "true")
		if r.ExitCode != 77 || !strings.Contains(r.Stderr, "only root may debug the rootful storage") {
			t.Errorf("another user's container as %s: exit %d, want 77\nstderr: %s", rootless.User, r.ExitCode, r.Stderr)
		}
		r = run("podman://"+mine, "wget", "-qO-", "127.0.0.1:80")
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "OK - GET") {
			t.Errorf("its own rootless container as %s: exit %d, want 0 and the server's answer\nstdout: %s\nstderr: %s",
				rootless.User, r.ExitCode, r.Stdout, r.Stderr)
		}
	})
	t.Run("GoneMidSession", func(t *testing.T) {
		rootful.Start(t, gone, image)
		cmd, stderr := startEphem(t, f, "debug", "podman://"+gone, "-q", "--image", f.busybox, "--", "sleep", "3401")
		waitFor(t, 20*time.Second, "the command", func() bool { return len(procs("sleep 3401")) == 1 })
		rootful.Run(t, "kill", gone)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ephem kept running after its podman container was killed")
		}
		if got := cmd.ProcessState.ExitCode(); got != 75 || !strings.Contains(stderr.String(), "exited during the session") {
			t.Errorf("exit %d, stderr %q; want 75 saying the target exited", got, stderr)
		}
	})
}

// userFiles returns a copy of ephem and a cache directory that p's user
// may use (the test binary's are root's alone).
func userFiles(t *testing.T, f *fixture, p *e2eutil.Podman) (bin, cache string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ephem-e2e-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	bin, cache = filepath.Join(dir, "ephem"), filepath.Join(dir, "cache")
	b, err := os.ReadFile(f.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(cache, p.UID, p.UID); err != nil {
		t.Fatal(err)
	}
	return bin, cache
}
