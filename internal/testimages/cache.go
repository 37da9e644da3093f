package testimages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// CacheEnv is the environment variable that overrides DefaultCacheDir.
const CacheEnv = "EPHEM_TEST_CACHE"

// DefaultCacheDir returns $EPHEM_TEST_CACHE, else /var/cache/ephem/testimages.
func DefaultCacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return "/var/cache/ephem/testimages"
}

// key returns a short stable hex digest of parts.
func key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// fileKey returns a key derived from the content of path.
func fileKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return key(string(b)), nil
}

// cachedFile returns cacheDir/name, creating it with build when it is missing.
// build writes to the temporary path it is given; the result is renamed into
// place, and concurrent builders (other processes too) are serialised with a
// lock file.
func cachedFile(ctx context.Context, cacheDir, name string, build func(ctx context.Context, tmp string) error) (string, error) {
	path := filepath.Join(cacheDir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache directory: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer os.RemoveAll(tmp)
	if err := build(ctx, tmp); err != nil {
		return "", fmt.Errorf("building cached %s: %w", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("storing cached %s: %w", name, err)
	}
	return path, nil
}

// lockFile takes an exclusive flock on path and returns its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// ensureFile makes sure path exists, installing the Debian package pkg with
// apt-get when it does not.
func ensureFile(ctx context.Context, path, pkg string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", pkg)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("installing Debian package %s for %s: %w: %s", pkg, path, err, out)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("finding %s after installing %s: %w", path, pkg, err)
	}
	return nil
}

// run runs a command and returns its stdout, with stderr in the error.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("running %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// SourceDir returns the root of the ephem source tree, which holds the
// fixtures images are built from: $EPHEM_SRC_DIR, else the directory this
// package was compiled from, else the nearest ancestor of the working
// directory whose go.mod declares the ephem module.
func SourceDir() (string, error) {
	if d := os.Getenv("EPHEM_SRC_DIR"); d != "" {
		return d, nil
	}
	if d := compiledSourceDir(); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/ephem-dev/ephem\n") {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", errors.New("finding the ephem source tree: set EPHEM_SRC_DIR or run inside the repository")
		}
	}
}
