package testimages

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// busyboxBinary is the static busybox of Debian's busybox-static package.
const busyboxBinary = "/usr/bin/busybox"

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group  = "root:x:0:\nnobody:x:65534:\n"
	// defaultPath is the PATH of the images built here.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Busybox returns a busybox image built from Debian's busybox-static:
// /bin/busybox, a symbolic link to it for every applet (as
// `busybox --install -s` makes them), /etc/passwd and /etc/group with root
// and nobody, /root and /tmp. Its command is sh.
func Busybox(ctx context.Context, cacheDir string) (v1.Image, error) {
	l, err := busyboxLayer(ctx, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("building busybox: %w", err)
	}
	return newImage([]v1.Layer{l}, v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}}, "ephem testimages busybox")
}

func busyboxLayer(ctx context.Context, cacheDir string) (v1.Layer, error) {
	if err := ensureFile(ctx, busyboxBinary, "busybox-static"); err != nil {
		return nil, err
	}
	k, err := fileKey(busyboxBinary)
	if err != nil {
		return nil, err
	}
	return cachedLayer(ctx, cacheDir, key("busybox-v1", k), gzip.BestCompression, func(b tarBuilder) error {
		return writeBusybox(ctx, b)
	})
}

// busyboxApplets lists the applet paths (relative, like "bin/sh") of the
// host's busybox binary.
func busyboxApplets(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "", nil, busyboxBinary, "--list-full")
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	var applets []string
	for _, a := range strings.Fields(out) {
		a = strings.TrimPrefix(filepath.Clean(a), "/")
		if a != "bin/busybox" {
			applets = append(applets, a)
		}
	}
	sort.Strings(applets)
	return applets, nil
}

func writeBusybox(ctx context.Context, b tarBuilder) error {
	applets, err := busyboxApplets(ctx)
	if err != nil {
		return err
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "var", "proc", "sys", "dev"} {
		if err := b.dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := b.dir("tmp", 0o1777); err != nil {
		return err
	}
	if err := b.fileFrom("bin/busybox", 0o755, busyboxBinary); err != nil {
		return err
	}
	if err := b.file("etc/passwd", 0o644, []byte(passwd)); err != nil {
		return err
	}
	if err := b.file("etc/group", 0o644, []byte(group)); err != nil {
		return err
	}
	seen := map[string]bool{"bin": true, "sbin": true, "usr": true, "usr/bin": true, "usr/sbin": true}
	for _, a := range applets {
		if err := b.dirs(seen, a); err != nil {
			return err
		}
		if err := b.symlink(a, "/bin/busybox"); err != nil {
			return err
		}
	}
	return nil
}

// compiledSourceDir returns the source tree this package was compiled from,
// or "" when it is not available (for example with -trimpath).
func compiledSourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "test", "fixtures")); err != nil {
		return ""
	}
	return filepath.Clean(root)
}
