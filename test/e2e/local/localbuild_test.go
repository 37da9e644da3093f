package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestLocalOnlyBuild: ephem as released (hack/build.sh: static, linked
// against musl, the local engine alone, about half the size of
// kubectl-ephem, the build with every backend) debugs a local target
// itself; alone, it refuses a Kubernetes reference with exit 64 naming the
// forms it knows and kubectl-ephem; with kubectl-ephem beside it, it hands
// every command line that may need Kubernetes to it (same arguments, output
// and exit code) and keeps the others; as root, it runs no kubectl-ephem
// that another user may write.
func TestLocalOnlyBuild(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	released, full, err := e2eutil.BuildRelease(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ephem")
	data, err := os.ReadFile(released)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	fullInfo, err := os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) >= int(fullInfo.Size())*3/4 {
		t.Errorf("the local-only ephem is %d bytes, kubectl-ephem %d: the Kubernetes backend is still linked in", len(data), fullInfo.Size())
	}
	tg := startTarget(t, f, targetOptions{})
	session := []string{"debug", tg.ref(), "-q", "--image", f.busybox, "--", "sh", "-c", "wget -qO- 127.0.0.1:80; exit 7"}
	r := e2eutil.Ephem(t, bin, f.cache, 2*time.Minute, session...)
	if r.ExitCode != 7 || !strings.Contains(r.Stdout, "OK") {
		t.Errorf("local-only debug: exit %d %q %q, want 7 and the target's reply", r.ExitCode, r.Stdout, r.Stderr)
	}
	r = e2eutil.Ephem(t, bin, f.cache, time.Minute, "debug", "pod/web", "--image", f.busybox, "--", "true")
	if r.ExitCode != 64 || !strings.Contains(r.Stderr, "unknown scheme") || !strings.Contains(r.Stderr, "pid:") || !strings.Contains(r.Stderr, "kubectl-ephem") {
		t.Errorf("local-only debug pod/web, alone: exit %d %q, want 64 naming the local forms and kubectl-ephem", r.ExitCode, r.Stderr)
	}

	// kubectl-ephem beside it, a script that says how it was run: what
	// is handed over, and what is not.
	marker := filepath.Join(dir, "handed")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" \"$EPHEM_HANDED_OVER\" >" + marker + "\nexit 42\n"
	if err := os.WriteFile(filepath.Join(dir, "kubectl-ephem"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		handed bool
	}{
		{session, false},
		{[]string{"debug", "pod/web", "-n", "prod", "--image", f.busybox, "--", "true"}, true},
		{[]string{"debug", "deploy/web", "--", "true"}, true},
		{[]string{"debug", "-n", "prod", tg.ref(), "--", "true"}, true},
		{[]string{"cp", "pod/web:/etc/hostname", "-"}, true},
		{[]string{"ls", "--kube"}, true},
		{[]string{"debug", "--help"}, true},
		{[]string{"version"}, false},
		{[]string{"ls"}, false},
	} {
		_ = os.Remove(marker)
		r := e2eutil.Ephem(t, bin, f.cache, 2*time.Minute, tc.args...)
		got, err := os.ReadFile(marker)
		handed := err == nil
		if handed != tc.handed {
			t.Errorf("ephem %q: handed over %v, want %v (exit %d, %s)", tc.args, handed, tc.handed, r.ExitCode, r.Stderr)
			continue
		}
		if handed && (r.ExitCode != 42 || string(got) != strings.Join(tc.args, " ")+"\n1\n") {
			t.Errorf("ephem %q handed over: exit %d, kubectl-ephem got %q; want 42 and the same arguments, EPHEM_HANDED_OVER=1", tc.args, r.ExitCode, got)
		}
		if !handed && r.ExitCode == 42 {
			t.Errorf("ephem %q: exit 42 without handing over", tc.args)
		}
	}

	// As root, a kubectl-ephem that others may write, or in a directory
	// others may write, is not run.
	for _, mode := range []struct {
		path string
		perm os.FileMode
	}{{filepath.Join(dir, "kubectl-ephem"), 0o777}, {dir, 0o777}} {
		_ = os.Chmod(filepath.Join(dir, "kubectl-ephem"), 0o755)
		_ = os.Chmod(dir, 0o755)
		if err := os.Chmod(mode.path, mode.perm); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(marker)
		r = e2eutil.Ephem(t, bin, f.cache, time.Minute, "debug", "pod/web", "--", "true")
		if _, err := os.Stat(marker); err == nil || r.ExitCode != 64 {
			t.Errorf("%s mode %o: handed over %v, exit %d %q; want kubectl-ephem not run, 64", mode.path, mode.perm, err == nil, r.ExitCode, r.Stderr)
		}
	}
	_ = os.Chmod(dir, 0o755)

	// The released kubectl-ephem beside it: a Kubernetes command line ends
	// as it does with kubectl-ephem itself.
	if err := os.Remove(filepath.Join(dir, "kubectl-ephem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(full, filepath.Join(dir, "kubectl-ephem")); err != nil {
		t.Fatal(err)
	}
	// Run directly under the name ephem, as the local build hands over
	// (kubectl-ephem calls itself "kubectl ephem" in its help).
	direct := filepath.Join(t.TempDir(), "ephem")
	if err := os.Symlink(full, direct); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"debug", "--help"},
		{"debug", "pod/web", "--kubeconfig", filepath.Join(dir, "none"), "--", "true"},
		{"debug", "-n", "prod", tg.ref(), "--", "true"},
	} {
		viaLocal := e2eutil.Ephem(t, bin, f.cache, time.Minute, args...)
		d := e2eutil.Ephem(t, direct, f.cache, time.Minute, args...)
		if viaLocal.ExitCode != d.ExitCode || viaLocal.Stdout != d.Stdout || viaLocal.Stderr != d.Stderr {
			t.Errorf("ephem %q: through the local-only build exit %d %q %q, the full build %d %q %q",
				args, viaLocal.ExitCode, viaLocal.Stdout, viaLocal.Stderr, d.ExitCode, d.Stdout, d.Stderr)
		}
	}
}
