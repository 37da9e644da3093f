package local_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImageSources: an OCI layout and a docker-archive tarball work as
// --image, as does EPHEM_IMAGE; pull progress goes to stderr, -q hides it.
func TestImageSources(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	if err := testimages.WriteLayout(layout, f.images["busybox"], "v1"); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "busybox.tar")
	tag, _ := name.NewTag("ephem/busybox:archived")
	if err := tarball.WriteToFile(archive, tag, f.images["busybox"]); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	for _, ref := range []string{"oci:" + layout + ":v1", "oci:" + layout, "docker-archive:" + archive} {
		r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "debug", tg.ref(), "--image", ref, "--", "wget", "-qO-", "localhost:80")
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "OK - GET") {
			t.Errorf("--image %s: exit %d stdout %q stderr %q", ref, r.ExitCode, r.Stdout, r.Stderr)
		}
	}

	// Progress: plain lines on a non-terminal stderr, nothing with -q.
	cache = t.TempDir()
	r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "debug", tg.ref(), "--image", f.busybox, "--", "true")
	if r.ExitCode != 0 || !strings.Contains(r.Stderr, "pulling "+f.busybox) || !strings.Contains(r.Stderr, "done") {
		t.Errorf("first pull: exit %d, stderr %q, want progress lines", r.ExitCode, r.Stderr)
	}
	r = e2eutil.Ephem(t, f.bin, cache, time.Minute, "debug", tg.ref(), "-q", "--pull", "always", "--image", f.busybox, "--", "true")
	if r.ExitCode != 0 || r.Stderr != "" {
		t.Errorf("-q: exit %d, stderr %q, want nothing", r.ExitCode, r.Stderr)
	}
	// Warm: the cached image is used without the registry.
	r = e2eutil.Ephem(t, f.bin, cache, time.Minute, "debug", tg.ref(), "--pull", "never", "--image", f.busybox, "--", "true")
	if r.ExitCode != 0 || r.Stderr != "" {
		t.Errorf("--pull never on a warm cache: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}

	// EPHEM_IMAGE picks the default image.
	t.Setenv("EPHEM_IMAGE", "oci:"+layout+":v1")
	r = e2eutil.Ephem(t, f.bin, cache, time.Minute, "debug", tg.ref(), "-q", "--", "cat", "/proc/1/cmdline")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "/server") {
		t.Errorf("EPHEM_IMAGE: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
}

// TestImagesCommands: images ls, rm and prune manage the cache; gc removes
// what a killed pull left.
func TestImagesCommands(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	cache := t.TempDir()
	if r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "debug", tg.ref(), "-q", "--image", f.busybox, "--", "true"); r.ExitCode != 0 {
		t.Fatalf("pulling: %s", r.Stderr)
	}
	r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "images", "ls")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, f.busybox) {
		t.Fatalf("images ls: exit %d, stdout %q, want %s listed", r.ExitCode, r.Stdout, f.busybox)
	}
	if r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "images", "rm", f.busybox); r.ExitCode != 0 {
		t.Fatalf("images rm: exit %d %s", r.ExitCode, r.Stderr)
	}
	if r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "images", "ls"); strings.Contains(r.Stdout, f.busybox) {
		t.Errorf("images ls after rm still lists it:\n%s", r.Stdout)
	}
	if r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "images", "rm", f.busybox); r.ExitCode != 67 {
		t.Errorf("images rm of a missing image: exit %d, want 67", r.ExitCode)
	}
	if r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "images", "prune"); r.ExitCode != 0 {
		t.Fatalf("images prune: exit %d %s", r.ExitCode, r.Stderr)
	}
	ents, _ := os.ReadDir(filepath.Join(cache, "layers", "sha256"))
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("prune left layer %s", e.Name())
		}
	}
	// Debris of a killed pull is removed by gc.
	debris := filepath.Join(cache, "tmp", "layer-killed")
	if err := os.MkdirAll(filepath.Join(debris, "fs", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "gc"); r.ExitCode != 0 {
		t.Fatalf("gc: exit %d %s", r.ExitCode, r.Stderr)
	}
	if _, err := os.Stat(debris); err == nil {
		t.Errorf("gc left %s", debris)
	}
}
