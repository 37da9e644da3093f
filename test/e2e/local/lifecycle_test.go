package local_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startEphem starts ephem in the background with the shared cache.
func startEphem(t *testing.T, f *fixture, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(f.bin, args...)
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+f.cache)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &stderr
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procs returns the host PIDs whose command line starts with s.
func procs(s string) []string {
	out, _ := exec.Command("pgrep", "-f", "^"+s).Output()
	return strings.Fields(string(out))
}

// assertClean fails if anything of a session is left on the host: a
// process, a mount of the cache, or a file in the cache's run directory.
func assertClean(t *testing.T, f *fixture, marker string) {
	t.Helper()
	waitFor(t, 3*time.Second, "the session's processes to go", func() bool {
		return len(procs(marker)) == 0 && len(procs("ephem-init")) == 0
	})
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), f.cache) {
		t.Errorf("host mount table mentions the cache %s:\n%s", f.cache, mounts)
	}
	if ents, _ := os.ReadDir(f.cache + "/run"); len(ents) > 0 {
		t.Errorf("the cache's run directory is not empty: %v", ents)
	}
	if ents, _ := os.ReadDir(f.cache + "/tmp"); len(ents) > 0 {
		t.Errorf("the cache's tmp directory is not empty: %v", ents)
	}
	// Records of a session that ended detached go at the next start or gc.
	if r := f.ephem(t, "gc"); r.ExitCode != 0 {
		t.Fatalf("gc: %s", r.Stderr)
	}
	if ents, _ := os.ReadDir("/run/ephem/sessions"); len(ents) > 0 {
		t.Errorf("session records left: %v", ents)
	}
}

// TestNothingLeftBehind: background and double-forked processes of a
// session die with it, after a normal exit and after kill -9 of ephem.
func TestNothingLeftBehind(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	spawn := func(n string) string {
		return "sleep 31" + n + "1 & (setsid sleep 31" + n + "2 &) ; sleep 31" + n + "3 & echo started"
	}

	// Normal exit: the command returns at once, leaving children behind.
	out := f.debug(t, tg.ref(), "sh", "-c", spawn("0"))
	if !strings.Contains(out, "started") {
		t.Fatalf("command did not run: %q", out)
	}
	assertClean(t, f, "sleep 310")

	// kill -9 of ephem in the middle of a session.
	cmd, _ := startEphem(t, f, "debug", tg.ref(), "-q", "--image", f.busybox, "--", "sh", "-c", spawn("1")+"; sleep 3199")
	waitFor(t, 10*time.Second, "the session's processes", func() bool { return len(procs("sleep 311")) == 3 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	assertClean(t, f, "sleep 31")
	if err := tg.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the target died with the session: %v", err)
	}
}

// TestSignals: Ctrl-C (SIGINT) and SIGTERM end the session cleanly, the
// command seeing the same signal.
func TestSignals(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		cmd, stderr := startEphem(t, f, "debug", tg.ref(), "-q", "--image", f.busybox, "--", "sleep", "3201")
		waitFor(t, 10*time.Second, "the command", func() bool { return len(procs("sleep 3201")) == 1 })
		start := time.Now()
		_ = cmd.Process.Signal(tt.sig)
		_ = cmd.Wait()
		if got := cmd.ProcessState.ExitCode(); got != tt.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tt.sig, got, tt.code, stderr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%v: took %v to end the session", tt.sig, d)
		}
		assertClean(t, f, "sleep 3201")
	}
}

// TestTargetExits: a target that exits during the session ends it with its
// own exit code and message.
func TestTargetExits(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	cmd, stderr := startEphem(t, f, "debug", tg.ref(), "-q", "--image", f.busybox, "--", "sleep", "3301")
	waitFor(t, 10*time.Second, "the command", func() bool { return len(procs("sleep 3301")) == 1 })
	tg.stop()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ephem kept running after its target exited")
	}
	if got := cmd.ProcessState.ExitCode(); got != 75 || !strings.Contains(stderr.String(), "exited during the session") {
		t.Errorf("exit %d, stderr %q; want 75 saying the target exited", got, stderr)
	}
	assertClean(t, f, "sleep 3301")
}
