package testimages

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Distroless returns the shell-less workload image: the static HTTP server
// built from test/fixtures/pyserv (CGO_ENABLED=0) as /server, and nothing
// else. It answers "OK - GET: Request completed" on port 80 (override with
// the PORT environment variable or -addr).
func Distroless(ctx context.Context, cacheDir string) (v1.Image, error) {
	bin, err := pyservBinary(ctx, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("building distroless: %w", err)
	}
	l, err := cachedLayer(ctx, cacheDir, key("distroless-v1", filepath.Base(bin)), gzip.BestCompression, func(b tarBuilder) error {
		return b.fileFrom("server", 0o755, bin)
	})
	if err != nil {
		return nil, fmt.Errorf("building distroless: %w", err)
	}
	cfg := v1.Config{
		Entrypoint:   []string{"/server"},
		Env:          []string{defaultPath},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
	}
	return newImage([]v1.Layer{l}, cfg, "ephem testimages distroless")
}

// pyservBinary builds test/fixtures/pyserv into the cache, keyed by its
// source and the Go toolchain version.
func pyservBinary(ctx context.Context, cacheDir string) (string, error) {
	src, err := SourceDir()
	if err != nil {
		return "", err
	}
	main := filepath.Join(src, "test", "fixtures", "pyserv", "main.go")
	k, err := fileKey(main)
	if err != nil {
		return "", err
	}
	goVersion, err := run(ctx, src, nil, "go", "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	name := "pyserv-" + key("pyserv-v1", k, strings.TrimSpace(goVersion), runtime.GOARCH)
	return cachedFile(ctx, cacheDir, name, func(ctx context.Context, tmp string) error {
		env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH, "GOWORK=off", "GOFLAGS=-mod=mod"}
		_, err := run(ctx, filepath.Dir(main), env, "go", "build", "-trimpath", "-buildvcs=false",
			"-ldflags=-s -w -buildid=", "-o", tmp, "./main.go")
		return err
	})
}

// Pause returns a pause image: Kubernetes' build/pause/linux/pause.c (kept
// in test/fixtures/pause) compiled statically with gcc as /pause, run as
// 65535:65535 like the upstream image.
func Pause(ctx context.Context, cacheDir string) (v1.Image, error) {
	bin, err := pauseBinary(ctx, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("building pause: %w", err)
	}
	l, err := cachedLayer(ctx, cacheDir, key("pause-v1", filepath.Base(bin)), gzip.BestCompression, func(b tarBuilder) error {
		return b.fileFrom("pause", 0o755, bin)
	})
	if err != nil {
		return nil, fmt.Errorf("building pause: %w", err)
	}
	cfg := v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535", Env: []string{defaultPath}}
	return newImage([]v1.Layer{l}, cfg, "ephem testimages pause")
}

// PauseVersion is the version the pause binary reports (pause -v).
const PauseVersion = "3.10.2"

func pauseBinary(ctx context.Context, cacheDir string) (string, error) {
	src, err := SourceDir()
	if err != nil {
		return "", err
	}
	c := filepath.Join(src, "test", "fixtures", "pause", "pause.c")
	k, err := fileKey(c)
	if err != nil {
		return "", err
	}
	if err := ensureFile(ctx, "/usr/bin/gcc", "gcc"); err != nil {
		return "", err
	}
	if err := ensureFile(ctx, "/usr/lib/x86_64-linux-gnu/libc.a", "libc6-dev"); err != nil && runtime.GOARCH == "amd64" {
		return "", err
	}
	gccVersion, err := run(ctx, "", nil, "gcc", "-dumpfullversion")
	if err != nil {
		return "", err
	}
	name := "pause-" + key("pause-v1", k, strings.TrimSpace(gccVersion), PauseVersion)
	return cachedFile(ctx, cacheDir, name, func(ctx context.Context, tmp string) error {
		dir, err := os.MkdirTemp("", "ephem-pause-")
		if err != nil {
			return fmt.Errorf("creating build directory: %w", err)
		}
		defer os.RemoveAll(dir)
		if _, err := run(ctx, dir, []string{"SOURCE_DATE_EPOCH=1704067200"}, "gcc", "-Os", "-Wall", "-Werror", "-static", "-s",
			"-DVERSION=v"+PauseVersion+"-ephem", "-o", tmp, c); err != nil {
			return fmt.Errorf("compiling pause.c: %w", err)
		}
		return nil
	})
}
