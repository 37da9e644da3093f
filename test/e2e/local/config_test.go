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

// TestConfigFile: the real binary reads $XDG_CONFIG_HOME/ephem/config.yaml.
// local.image (over image, which names nothing pullable) is the image a
// local debug session pulls, into the file's cache-dir, with the pull
// policy and audit log it sets; "ephem config view" names each value's
// source; a malformed file is one line naming file and line, exit 78,
// while "ephem version" still works.
func TestConfigFile(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{hostname: "cfgtarget"})
	home := t.TempDir()
	cache := filepath.Join(t.TempDir(), "cache")
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	file := filepath.Join(home, "ephem", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(`# e2e
image: 127.0.0.1:1/not/pulled:1
local:
  image: ` + f.busybox + `
cache-dir: ` + cache + `
pull: always
audit:
  log: ` + auditLog + `
`)
	env := []string{"XDG_CONFIG_HOME=" + home, "EPHEM_CONFIG=", "EPHEM_IMAGE=", "EPHEM_CACHE_DIR=", "EPHEM_AUDIT_LOG=", "EPHEM_NO_AUDIT="}
	ephem := func(args ...string) e2eutil.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r, err := e2eutil.Run(ctx, env, f.bin, args...)
		if err != nil {
			t.Fatalf("ephem %v: %v\nstderr: %s", args, err, r.Stderr)
		}
		return r
	}

	r := ephem("debug", tg.ref(), "--", "hostname")
	if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "cfgtarget" {
		t.Fatalf("debug with local.image: exit %d, stdout %q\nstderr: %s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if r = ephem("images", "ls"); r.ExitCode != 0 || !strings.Contains(r.Stdout, f.busybox) || strings.Contains(r.Stdout, "not/pulled") {
		t.Errorf("images ls in the file's cache-dir: exit %d, want %s only:\n%s%s", r.ExitCode, f.busybox, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(cache)); err != nil {
		t.Errorf("cache-dir %s: %v", cache, err)
	}
	if b, err := os.ReadFile(auditLog); err != nil || !strings.Contains(string(b), f.busybox) {
		t.Errorf("audit.log %s: %v %q, want a record of the session", auditLog, err, b)
	}

	r = ephem("config", "view")
	if r.ExitCode != 0 {
		t.Fatalf("config view: exit %d: %s", r.ExitCode, r.Stderr)
	}
	for _, want := range [][]string{
		{"local.image", f.busybox, file + ":4"},
		{"image", "127.0.0.1:1/not/pulled:1", file + ":2"},
		{"kubernetes.image", "127.0.0.1:1/not/pulled:1", file + ":2"},
		{"cache-dir", cache, file + ":5"},
		{"pull", "always", file + ":6"},
		{"profile", "general", "default"},
	} {
		if !hasRow(r.Stdout, want...) {
			t.Errorf("config view has no row %q:\n%s", want, r.Stdout)
		}
	}

	writeConfig("pull: always\nlocal:\n  imgae: busybox\n")
	r = ephem("debug", tg.ref(), "--", "true")
	want := "ephem: reading " + file + `: line 3: unknown key "local.imgae" (did you mean "local.image"?)` + "\n"
	if r.ExitCode != 78 || r.Stderr != want {
		t.Errorf("malformed config: exit %d %q, want 78 %q", r.ExitCode, r.Stderr, want)
	}
	if r = ephem("config", "view"); r.ExitCode != 78 || r.Stderr != want {
		t.Errorf("config view of a malformed config: exit %d %q, want 78 %q", r.ExitCode, r.Stderr, want)
	}
	if r = ephem("version"); r.ExitCode != 0 {
		t.Errorf("version with a malformed config: exit %d %q, want 0", r.ExitCode, r.Stderr)
	}
}

// hasRow says whether a table line has exactly cells as its columns.
func hasRow(table string, cells ...string) bool {
	for _, l := range strings.Split(table, "\n") {
		if strings.Join(strings.Fields(l), " ") == strings.Join(cells, " ") {
			return true
		}
	}
	return false
}
