package local_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// startEnvTarget starts a process in namespaces of its own with exactly
// env, and waits until it runs with it.
func startEnvTarget(t *testing.T, env ...string) int {
	t.Helper()
	tg := e2eutil.StartTarget(t, append(append([]string{"env", "-i"}, env...), "/bin/sleep", "infinity")...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// unshare forks before env runs: wait for sleep's environment.
		b, err := os.ReadFile("/proc/" + itoa(tg.PID) + "/environ")
		if err == nil && bytes.HasPrefix(b, []byte(env[0]+"\x00")) {
			return tg.PID
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target's environment is %q (%v), want %q", b, err, env)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// debugWith runs "ephem debug TARGET -q --image busybox ARGS..." and fails
// the test unless it exits 0.
func debugWith(t *testing.T, f *fixture, target string, args ...string) string {
	t.Helper()
	r := f.ephem(t, append([]string{"debug", target, "-q", "--image", f.busybox}, args...)...)
	if r.ExitCode != 0 {
		t.Fatalf("ephem debug %s %s: exit %d\nstdout: %s\nstderr: %s", target, strings.Join(args, " "), r.ExitCode, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// TestEnvFromTarget: --env-from-target gives the debug command the target
// process's environment, under the image's PATH and -e.
func TestEnvFromTarget(t *testing.T) {
	f := setup(t)
	pid := startEnvTarget(t, "APP_MODE=from target", "SHARED=target", "PATH=/target/only/bin", "MULTI=a b\tc")
	ref := "pid:" + itoa(pid)
	script := `echo "mode=$APP_MODE"; echo "shared=$SHARED"; echo "multi=$MULTI"; echo "path=$PATH"; which wget; env | grep -c '^APP_MODE=' || true`

	out := debugWith(t, f, ref, "--env-from-target", "--", "sh", "-c", script)
	for _, want := range []string{"mode=from target\n", "shared=target\n", "multi=a b\tc\n", "bin/wget\n", "\n1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("--env-from-target: output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "/target/only") || !strings.Contains(out, "path=/") {
		t.Errorf("PATH is not the image's:\n%s", out)
	}

	// -e overrides the target's value, and may set PATH.
	out = debugWith(t, f, ref, "--env-from-target", "-e", "SHARED=flag", "-e", "PATH=/usr/bin:/bin:/target/only/bin", "--", "sh", "-c", script)
	for _, want := range []string{"mode=from target\n", "shared=flag\n", "path=/usr/bin:/bin:/target/only/bin\n", "bin/wget\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("with -e: output lacks %q:\n%s", want, out)
		}
	}

	// Without the flag, none of it.
	out = debugWith(t, f, ref, "--", "sh", "-c", script)
	if !strings.Contains(out, "mode=\n") || !strings.Contains(out, "shared=\n") {
		t.Errorf("without --env-from-target the target's variables are set:\n%s", out)
	}
}

// TestEnvFromTargetLarge: a target environment of 840 kB (seven values of
// 120 kB, each under execve's limit for one string) reaches the command.
func TestEnvFromTargetLarge(t *testing.T) {
	f := setup(t)
	var env []string
	for _, k := range []string{"A", "B", "C", "D", "E", "F", "G"} {
		env = append(env, k+"="+strings.Repeat("v", 120<<10))
	}
	pid := startEnvTarget(t, env...)
	out := debugWith(t, f, "pid:"+itoa(pid), "--env-from-target", "--", "sh", "-c", `echo ${#A} ${#D} ${#G}`)
	if want := "122880 122880 122880\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}
