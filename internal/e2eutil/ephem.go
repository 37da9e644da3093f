package e2eutil

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var ephemBinary shared[string]

// EnvBinary names a prebuilt ephem for the end-to-end tests to run instead
// of building one: a release build's kubectl-ephem (hack/build.sh), say.
const EnvBinary = "EPHEM_E2E_BINARY"

// BuildEphem builds ./cmd/ephem once per test binary into a temporary
// directory and returns the binary's path. The directory is removed when
// the test binary ends (see Main). With EPHEM_E2E_BINARY set, it returns
// that binary instead.
func BuildEphem(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(EnvBinary); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatalf("%s=%s: %v", EnvBinary, bin, err)
		}
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("%s: %v", EnvBinary, err)
		}
		return abs
	}
	return ephemBinary.get(t, func() (string, func(), error) {
		return buildEphem(context.Background())
	})
}

func buildEphem(ctx context.Context) (string, func(), error) {
	root, err := RepoRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "ephem-e2e-bin-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a directory for the ephem binary: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	bin := filepath.Join(dir, "ephem")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	r, err := Run(ctx, nil, "go", "-C", root, "build", "-o", bin, "./cmd/ephem")
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building ephem: %w", err)
	}
	return bin, cleanup, nil
}

// Ephem runs the ephem binary bin with args, with EPHEM_CACHE_DIR set to
// cacheDir when it is not empty, and returns what it did. It fails t only
// when the binary cannot be run or does not finish within timeout.
func Ephem(t testing.TB, bin, cacheDir string, timeout time.Duration, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var env []string
	if cacheDir != "" {
		env = append(env, "EPHEM_CACHE_DIR="+cacheDir)
	}
	r, err := Run(ctx, env, bin, args...)
	if err != nil {
		t.Fatalf("ephem %v: %v\nstdout: %s\nstderr: %s", args, err, r.Stdout, r.Stderr)
	}
	return r
}

// BuildRelease builds ephem's two binaries as released (hack/build.sh:
// static, stripped, linked against musl) into dir and returns their paths:
// ephem, the local engine, and kubectl-ephem beside it, with every backend.
func BuildRelease(ctx context.Context, dir string) (ephem, kubectlEphem string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	r, err := Run(ctx, nil, "bash", filepath.Join(root, "hack", "build.sh"), dir)
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	if err != nil {
		return "", "", fmt.Errorf("building the release's ephem (hack/build.sh): %w", err)
	}
	return filepath.Join(dir, "ephem"), filepath.Join(dir, "kubectl-ephem"), nil
}
