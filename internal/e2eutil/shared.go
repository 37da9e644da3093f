package e2eutil

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// process holds the cleanups run when the test binary ends (see Main).
var process struct {
	mu       sync.Mutex
	main     bool
	cleanups []func()
}

// Main runs the tests of m, then releases the shared resources set up
// during the run (the Docker daemon if this binary started it, the ephem
// binary), and exits with the tests' status. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(RunTests(m))
}

// RunTests is Main without the exit, for a TestMain with more to do around the
// tests: it runs them, releases the shared resources and returns the
// tests' status.
func RunTests(m *testing.M) int {
	process.mu.Lock()
	process.main = true
	process.mu.Unlock()
	// The ephem commands of the tests audit to a log of their own, not to
	// the host's /var/log/ephem/audit.jsonl (tests that check the log
	// name theirs with --audit-log).
	if os.Getenv("EPHEM_AUDIT_LOG") == "" {
		if dir, err := os.MkdirTemp("", "ephem-e2e-audit-"); err == nil {
			_ = os.Setenv("EPHEM_AUDIT_LOG", filepath.Join(dir, "audit.jsonl"))
			defer os.RemoveAll(dir)
		}
	}
	code := m.Run()
	runProcessCleanups()
	return code
}

func runProcessCleanups() {
	process.mu.Lock()
	cs := process.cleanups
	process.cleanups = nil
	process.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// shared is a resource set up at most once per test binary (or once per
// test when Main is not in use).
type shared[T any] struct {
	mu    sync.Mutex
	ready bool
	val   T
	err   error
}

// get returns the resource, setting it up with setup on first use. The
// cleanup setup returns runs when the binary ends under Main; otherwise it
// runs in t's Cleanup and the next caller sets the resource up again.
func (s *shared[T]) get(t testing.TB, setup func() (T, func(), error)) T {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		val, cleanup, err := setup()
		s.val, s.err = val, err
		process.mu.Lock()
		underMain := process.main
		if underMain {
			s.ready = true
			if cleanup != nil {
				process.cleanups = append(process.cleanups, cleanup)
			}
		}
		process.mu.Unlock()
		if !underMain && cleanup != nil {
			t.Cleanup(func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.ready = false
				cleanup()
			})
		}
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.val
}
