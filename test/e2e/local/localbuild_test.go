package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
)

// TestLocalOnlyBuild: ephem built with the tag ephem_local (the release's
// ephem: the local engine alone, about half the size) debugs a local
// target itself; alone, it refuses a Kubernetes reference with exit 64
// naming the forms it knows and kubectl-ephem; with kubectl-ephem beside
// it, it hands every command line that may need Kubernetes to it (same
// arguments, output and exit code) and keeps the others; as root, it runs
// no kubectl-ephem that another user may write.
func TestLocalOnlyBuild(t *testing.T) {
	f := setup(t)
	root, err := testimages.SourceDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ephem")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if r, err := e2eutil.Run(ctx, nil, "go", "-C", root, "build", "-tags", "ephem_local", "-o", bin, "./cmd/ephem"); err != nil || r.ExitCode != 0 {
		t.Fatalf("building the local-only ephem: %v %s", err, r.Stderr)
	}
	full, _ := os.Stat(f.bin)
	local, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if local.Size() >= full.Size()*3/4 {
		t.Errorf("the local-only ephem is %d bytes, the full build %d: the Kubernetes backend is still linked in", local.Size(), full.Size())
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

	// The real full build beside it: a Kubernetes command line ends as it
	// does with the full build itself.
	if err := os.Remove(filepath.Join(dir, "kubectl-ephem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.bin, filepath.Join(dir, "kubectl-ephem")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"debug", "--help"},
		{"debug", "pod/web", "--kubeconfig", filepath.Join(dir, "none"), "--", "true"},
		{"debug", "-n", "prod", tg.ref(), "--", "true"},
	} {
		viaLocal := e2eutil.Ephem(t, bin, f.cache, time.Minute, args...)
		direct := e2eutil.Ephem(t, f.bin, f.cache, time.Minute, args...)
		if viaLocal.ExitCode != direct.ExitCode || viaLocal.Stdout != direct.Stdout || viaLocal.Stderr != direct.Stderr {
			t.Errorf("ephem %q: through the local-only build exit %d %q %q, the full build %d %q %q",
				args, viaLocal.ExitCode, viaLocal.Stdout, viaLocal.Stderr, direct.ExitCode, direct.Stdout, direct.Stderr)
		}
	}
}
