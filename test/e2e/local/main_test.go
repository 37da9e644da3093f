// Package local_test is the local engine's end-to-end suite: it builds the
// ephem binary and runs it as root against real processes in their own
// namespaces, a real dockerd and images served by a real registry on
// 127.0.0.1, asserting what a user would see.
package local_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestMain(m *testing.M) { e2eutil.Main(m) }

// fixture is what every test shares: the binary, a registry with the test
// images, and a warm image cache.
type fixture struct {
	bin      string
	registry string
	busybox  string // registry reference of the busybox image
	rootfs   string // the distroless workload's root, for local targets
	cache    string // a warm cache shared by tests that do not inspect it
	images   map[string]v1.Image
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func setup(t *testing.T) *fixture {
	t.Helper()
	e2eutil.RequireRoot(t)
	fixOnce.Do(func() { fixErr = fix.init(t) })
	if fixErr != nil {
		t.Fatalf("setting up the e2e fixture: %v", fixErr)
	}
	return &fix
}

func (f *fixture) init(t *testing.T) error {
	ctx := context.Background()
	f.bin = e2eutil.BuildEphem(t)
	cacheDir := testimages.DefaultCacheDir()
	f.images = map[string]v1.Image{}
	for name, build := range map[string]func(context.Context, string) (v1.Image, error){
		"busybox": testimages.Busybox, "distroless": testimages.Distroless,
	} {
		img, err := build(ctx, cacheDir)
		if err != nil {
			return err
		}
		f.images[name] = img
	}
	dir, err := os.MkdirTemp("", "ephem-e2e-")
	if err != nil {
		return err
	}
	// Targets in their own user namespace run as host UID 100000.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	e2eutil.AtExit(func() { _ = os.RemoveAll(dir) })
	addr, stop, err := testimages.StartRegistry(ctx, filepath.Join(dir, "registry"))
	if err != nil {
		return err
	}
	e2eutil.AtExit(func() { _ = stop() })
	f.registry = addr
	f.busybox = addr + "/ephem/busybox:test"
	if err := testimages.Push(ctx, f.images["busybox"], f.busybox); err != nil {
		return err
	}
	f.rootfs = filepath.Join(dir, "distroless-root")
	if err := extract(f.images["distroless"], f.rootfs); err != nil {
		return err
	}
	f.cache = filepath.Join(dir, "cache")
	return nil
}

// ephem runs the binary with the shared warm cache.
func (f *fixture) ephem(t *testing.T, args ...string) e2eutil.Result {
	t.Helper()
	return e2eutil.Ephem(t, f.bin, f.cache, 2*time.Minute, args...)
}

// debug runs "ephem debug TARGET --image busybox -- CMD..." and fails the
// test unless it exits 0.
func (f *fixture) debug(t *testing.T, target string, cmd ...string) string {
	t.Helper()
	args := append([]string{"debug", target, "-q", "--image", f.busybox, "--"}, cmd...)
	r := f.ephem(t, args...)
	if r.ExitCode != 0 {
		t.Fatalf("ephem %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.ExitCode, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// extract writes img's flattened filesystem to dir (test set-up only; ephem
// itself never flattens).
func extract(img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				var out *os.File
				if out, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)); err == nil {
					_, err = io.Copy(out, tr)
					out.Close()
				}
			}
		case tar.TypeSymlink:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.Symlink(h.Linkname, p)
			}
		}
		if err != nil {
			return err
		}
	}
}
