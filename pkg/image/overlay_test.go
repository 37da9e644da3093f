package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/ephem-dev/ephem/pkg/image"
)

// tarLayer returns a layer holding files (name → content; a name ending in
// "/" is a directory).
func tarLayer(t *testing.T, files ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		name, body, _ := strings.Cut(f, "=")
		h := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(body))}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestOverlayMount mounts the unpacked layers of an image as overlayfs
// lowerdirs, as the local engine does, and checks that whiteouts and
// opaque directories take effect in the merged tree.
func TestOverlayMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	base := tarLayer(t, "etc/", "etc/keep=k", "etc/gone=g", "d/", "d/old=o", "bin/", "bin/tool=v1")
	top := tarLayer(t, "etc/", "etc/.wh.gone=", "d/", "d/.wh..wh..opq=", "d/new=n", "bin/", "bin/tool=v2")
	img, err := mutate.AppendLayers(empty.Image, base, top)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	p, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	got, err := openStore(t, t.TempDir()).Ensure(context.Background(), "oci:"+src, image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lower := slices.Clone(got.Layers)
	slices.Reverse(lower) // overlayfs lists the top layer first
	mnt := t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lower, ":")); err != nil {
		t.Skipf("overlayfs not available: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })

	var files []string
	err = filepath.WalkDir(mnt, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			b, _ := os.ReadFile(path) //nolint:gosec // test path
			rel, _ := filepath.Rel(mnt, path)
			files = append(files, rel+"="+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bin/tool=v2", "d/new=n", "etc/keep=k"}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("merged tree (-want +got):\n%s", diff)
	}
}
