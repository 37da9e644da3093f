package e2eutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/testimages"
)

// RequireRoot skips t unless the test runs as root. Under CI (CI=true) or
// with EPHEM_E2E=1 it fails t instead, so that end-to-end tests cannot
// silently not run where they must.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" || os.Getenv("EPHEM_E2E") == "1" {
		t.Fatal("end-to-end tests need root (CI=true or EPHEM_E2E=1 is set, so this is a failure, not a skip)")
	}
	t.Skip("end-to-end test: needs root (run go test ./... as root)")
}

// RepoRoot returns the root of the ephem source tree: $EPHEM_SRC_DIR, else
// the nearest ancestor of the working directory whose go.mod declares the
// ephem module (go test runs tests in their package's directory).
func RepoRoot() (string, error) { return testimages.SourceDir() }

// Result is what a finished command left.
type Result struct {
	Stdout, Stderr string
	// ExitCode is the command's exit status, or -1 when it did not exit
	// normally (killed by a signal, or not started).
	ExitCode int
	// Duration is the wall time from start to exit.
	Duration time.Duration
}

// Run runs name with args and env added to this process's environment,
// and returns what it printed and its exit status. err is set only when
// the command could not be run at all or ctx ended first; a non-zero exit
// is reported in Result.ExitCode.
func Run(ctx context.Context, env []string, name string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1, Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return r, fmt.Errorf("running %s: %w", name, ctx.Err())
	case errors.As(err, &exitErr):
		// A non-zero exit is the caller's to judge.
	default:
		return r, fmt.Errorf("running %s: %w", name, err)
	}
	return r, nil
}

// MustRun runs the command like Run and fails t unless it exits 0. It
// returns the command's stdout with surrounding blanks trimmed.
func MustRun(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := Run(ctx, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstderr: %s", name, strings.Join(args, " "), err, r.Stderr)
	}
	if r.ExitCode != 0 {
		t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), r.ExitCode, r.Stdout, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}
