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
// ephem-local: no Kubernetes backend, about half the size) debugs a local
// target as ephem does, and refuses a Kubernetes reference with exit 64
// naming the forms it knows.
func TestLocalOnlyBuild(t *testing.T) {
	f := setup(t)
	root, err := testimages.SourceDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ephem-local")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if r, err := e2eutil.Run(ctx, nil, "go", "-C", root, "build", "-tags", "ephem_local", "-o", bin, "./cmd/ephem"); err != nil || r.ExitCode != 0 {
		t.Fatalf("building ephem-local: %v %s", err, r.Stderr)
	}
	full, _ := os.Stat(f.bin)
	local, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if local.Size() >= full.Size()*3/4 {
		t.Errorf("ephem-local is %d bytes, ephem %d: the Kubernetes backend is still linked in", local.Size(), full.Size())
	}
	tg := startTarget(t, f, targetOptions{})
	r := e2eutil.Ephem(t, bin, f.cache, 2*time.Minute, "debug", tg.ref(), "-q", "--image", f.busybox, "--", "sh", "-c", "wget -qO- 127.0.0.1:80; exit 7")
	if r.ExitCode != 7 || !strings.Contains(r.Stdout, "OK") {
		t.Errorf("ephem-local debug: exit %d %q %q, want 7 and the target's reply", r.ExitCode, r.Stdout, r.Stderr)
	}
	r = e2eutil.Ephem(t, bin, f.cache, time.Minute, "debug", "pod/web", "--image", f.busybox, "--", "true")
	if r.ExitCode != 64 || !strings.Contains(r.Stderr, "unknown scheme") || !strings.Contains(r.Stderr, "pid:") {
		t.Errorf("ephem-local debug pod/web: exit %d %q, want 64 naming the local forms", r.ExitCode, r.Stderr)
	}
}
