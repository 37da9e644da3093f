package local_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestUnpackBounds: an image cannot fill the cache's file system. A cap
// (--max-image-size) refuses one that unpacks to more (65), a free-space
// floor (--cache-min-free) stops before the file system runs low (71), and
// a file system that fills all the same (ENOSPC, a tiny tmpfs) says so
// (71); each leaves nothing half-written, and once there is room the next
// run works.
func TestUnpackBounds(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	run := func(cache string, extra ...string) e2eutil.Result {
		args := append([]string{"debug", tg.ref(), "-q", "--image", f.busybox}, extra...)
		return e2eutil.Ephem(t, f.bin, cache, time.Minute, append(args, "--", "true")...)
	}
	check := func(name string, r e2eutil.Result, code int, want ...string) {
		t.Helper()
		ok := r.ExitCode == code && strings.Count(strings.TrimSpace(r.Stderr), "\n") == 0
		for _, w := range want {
			ok = ok && strings.Contains(r.Stderr, w)
		}
		if !ok {
			t.Errorf("%s: exit %d %q, want %d and one line with %q", name, r.ExitCode, r.Stderr, code, want)
		}
	}
	cache := t.TempDir()
	check("cap", run(cache, "--max-image-size", "64K"), 65, "more than --max-image-size")
	assertNoLayers(t, cache)
	check("floor", run(cache, "--cache-min-free", "1000T"), 71, "below --cache-min-free", "ephem images prune")
	assertNoLayers(t, cache)

	// A 1 MiB tmpfs: busybox (2 MB) does not fit.
	tiny := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", tiny).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", tiny).Run() })
	check("ENOSPC", run(tiny, "--cache-min-free", "0"), 71, "no space left")
	assertNoLayers(t, tiny)
	if out, err := exec.Command("mount", "-o", "remount,size=64m", tiny).CombinedOutput(); err != nil {
		t.Fatalf("growing the tmpfs: %v %s", err, out)
	}
	if r := run(tiny, "--cache-min-free", "0"); r.ExitCode != 0 {
		t.Errorf("after freeing space: exit %d %q, want the run to work", r.ExitCode, r.Stderr)
	}
}
