package testimages

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ToolboxPackages are the Debian packages of the toolbox image.
var ToolboxPackages = []string{"bash", "curl", "iproute2", "procps", "strace", "tcpdump"}

const (
	toolboxSuite   = "bookworm"
	toolboxVariant = "apt"
	// toolboxEpoch is SOURCE_DATE_EPOCH for mmdebstrap (2024-01-01).
	toolboxEpoch = "1704067200"
)

// Toolbox returns a Debian bookworm image (mmdebstrap, variant apt) with
// bash, curl, iproute2, procps, strace and tcpdump: about 190 MB. The rootfs
// is built once (about 45 s; it needs the host's Debian package registry)
// and cached as a compressed layer keyed by its inputs. Its command is bash.
func Toolbox(ctx context.Context, cacheDir string) (v1.Image, error) {
	l, err := toolboxLayer(ctx, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("building toolbox: %w", err)
	}
	return newImage([]v1.Layer{l}, v1.Config{Cmd: []string{"bash"}, Env: []string{defaultPath}}, "ephem testimages toolbox")
}

func toolboxLayer(ctx context.Context, cacheDir string) (v1.Layer, error) {
	if err := ensureFile(ctx, "/usr/bin/mmdebstrap", "mmdebstrap"); err != nil {
		return nil, err
	}
	k := key("toolbox-v1", toolboxSuite, toolboxVariant, toolboxEpoch, strings.Join(ToolboxPackages, ","))
	p, err := cachedFile(ctx, cacheDir, "layer-"+k+".tar.gz", func(ctx context.Context, tmp string) error {
		return mmdebstrap(ctx, tmp)
	})
	if err != nil {
		return nil, err
	}
	return layerFromFile(p)
}

// mmdebstrap builds the toolbox rootfs tar and compresses it into dst.
func mmdebstrap(ctx context.Context, dst string) error {
	dir, err := os.MkdirTemp(filepath.Dir(dst), ".mmdebstrap-")
	if err != nil {
		return fmt.Errorf("creating build directory: %w", err)
	}
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "rootfs.tar")
	args := []string{
		"--variant=" + toolboxVariant,
		"--include=" + strings.Join(ToolboxPackages, ","),
		// Keep the image lean: no apt lists, caches, docs or man pages.
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/* \"$1\"/var/log/*",
		toolboxSuite, rootfs,
	}
	if _, err := run(ctx, dir, []string{"SOURCE_DATE_EPOCH=" + toolboxEpoch}, "mmdebstrap", args...); err != nil {
		return fmt.Errorf("building the Debian rootfs: %w", err)
	}
	return gzipFile(rootfs, dst, gzip.BestSpeed)
}
