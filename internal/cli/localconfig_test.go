package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLocalConfigErrors: a cache directory that cannot be one and a Docker
// config.json that does not parse are the user's to fix, with one line
// and a documented code, never an internal error (70).
func TestLocalConfigErrors(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "images", "ls", "--cache-dir", notDir)
	if code != ExitUsage || !strings.Contains(errOut, "not a directory: choose another --cache-dir") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("a file as --cache-dir: exit %d %q, want 64 in one line", code, errOut)
	}

	docker := t.TempDir()
	if err := os.WriteFile(filepath.Join(docker, "config.json"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", docker)
	code, _, errOut = run(t, "debug", "pid:"+strconv.Itoa(os.Getpid()), "-q", "--cache-dir", t.TempDir(), "--pull", "always", "--image", "127.0.0.1:1/x", "--", "true")
	if os.Geteuid() == 0 && (code != ExitUsage || !strings.Contains(errOut, "reading registry credentials") || !strings.Contains(errOut, "DOCKER_CONFIG")) {
		t.Errorf("a garbage config.json: exit %d %q, want 64 naming it", code, errOut)
	}

	if os.Geteuid() != 0 {
		return
	}
	ro := t.TempDir()
	if err := unix.Mount("tmpfs", ro, "tmpfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(ro, 0) })
	if code, _, errOut := run(t, "gc", "--cache-dir", ro); code != ExitOS || !strings.Contains(errOut, "read-only") {
		t.Errorf("an empty read-only --cache-dir: exit %d %q, want 71 saying read-only", code, errOut)
	}
}
