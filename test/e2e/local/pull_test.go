package local_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
)

// TestKilledPull: kill -9 of ephem in the middle of a pull leaves no layer
// that looks complete; the next run pulls and works, and gc removes the
// debris.
func TestKilledPull(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	img, err := testimages.Large(context.Background(), testimages.DefaultCacheDir(), 200)
	if err != nil {
		t.Fatal(err)
	}
	ref := testimages.LargeRef(f.registry, 200)
	if err := testimages.Push(context.Background(), img, ref); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	args := []string{"debug", tg.ref(), "-q", "--image", ref, "--", "true"}
	for attempt := 0; ; attempt++ {
		cmd, _ := startEphemCache(t, f, cache, args...)
		// Wait until something is being written, then kill.
		waitFor(t, 30*time.Second, "the pull to start", func() bool {
			ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
			return len(ents) > 0 || cmd.ProcessState != nil
		})
		time.Sleep(time.Duration(50*attempt) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if !cmd.ProcessState.Success() || attempt == 3 {
			break
		}
	}
	// No layer directory may be complete without its marker.
	layers, _ := os.ReadDir(filepath.Join(cache, "layers", "sha256"))
	for _, l := range layers {
		if !l.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(cache, "layers", "sha256", l.Name(), ".done")); err != nil {
			t.Errorf("layer %s is in place without its .done marker", l.Name())
		}
	}
	r := e2eutil.Ephem(t, f.bin, cache, 2*time.Minute, args...)
	if r.ExitCode != 0 {
		t.Fatalf("run after a killed pull: exit %d: %s", r.ExitCode, r.Stderr)
	}
	if r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "gc"); r.ExitCode != 0 {
		t.Fatalf("gc: %s", r.Stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(cache, "tmp")); len(ents) > 0 {
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("tmp after gc: %s", strings.Join(names, ", "))
	}
	assertClean(t, f, "ephem-init")
}

func startEphemCache(t *testing.T, f *fixture, cache string, args ...string) (*exec.Cmd, error) {
	t.Helper()
	saved := f.cache
	f.cache = cache
	defer func() { f.cache = saved }()
	cmd, _ := startEphem(t, f, args...)
	return cmd, nil
}
