package testimages_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ephem-dev/ephem/internal/testimages"
)

// entries maps every path in img's layers to its tar header.
func entries(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("listing layers: %v", err)
	}
	m := map[string]*tar.Header{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatalf("opening layer: %v", err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("reading layer: %v", err)
			}
			m[filepath.Clean(h.Name)] = h
		}
		rc.Close()
	}
	return m
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("computing digest: %v", err)
	}
	return d
}

func TestBusyboxLayout(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	img, err := testimages.Busybox(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := testimages.WriteLayout(dir, img, "busybox:test"); err != nil {
		t.Fatal(err)
	}
	// Read the image back from the layout, as a consumer would.
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := p.Image(digest(t, img))
	if err != nil {
		t.Fatalf("reading image back from layout: %v", err)
	}
	files := entries(t, back)
	if h := files["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Size < 500_000 {
		t.Errorf("bin/busybox = %+v, want a regular file of the static binary", h)
	}
	for _, p := range []string{"bin/sh", "usr/bin/wget"} {
		if h := files[p]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/bin/busybox" {
			t.Errorf("%s = %+v, want a symlink to /bin/busybox", p, h)
		}
	}
	for _, p := range []string{"etc/passwd", "etc/group", "tmp"} {
		if files[p] == nil {
			t.Errorf("%s missing", p)
		}
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Equal(testimages.Epoch) {
		t.Errorf("config os/arch/created = %s/%s/%s", cf.OS, cf.Architecture, cf.Created)
	}
	// A second build from a cold cache gives the same digest.
	again, err := testimages.Busybox(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, img), digest(t, again); a != b {
		t.Errorf("busybox digest not reproducible: %s != %s", a, b)
	}
}

func TestDistrolessHasNoShell(t *testing.T) {
	ctx := context.Background()
	img, err := testimages.Distroless(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	files := entries(t, img)
	if len(files) != 1 || files["server"] == nil {
		t.Errorf("distroless files = %v, want only server", keys(files))
	}
	for _, p := range []string{"bin/sh", "bin/busybox", "bin/bash"} {
		if files[p] != nil {
			t.Errorf("distroless contains %s", p)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/server" {
		t.Errorf("entrypoint = %q, want [/server]", cf.Config.Entrypoint)
	}
	again, err := testimages.Distroless(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, img), digest(t, again); a != b {
		t.Errorf("distroless digest not reproducible: %s != %s", a, b)
	}
}

func TestPauseAndLarge(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	pause, err := testimages.Pause(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	if h := entries(t, pause)["pause"]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("pause image has no executable /pause: %+v", h)
	}
	pauseAgain, err := testimages.Pause(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, pause), digest(t, pauseAgain); a != b {
		t.Errorf("pause digest not reproducible: %s != %s", a, b)
	}
	large, err := testimages.Large(ctx, cache, 70)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(0)
	for p, h := range entries(t, large) {
		if filepath.Dir(p) == "filler" {
			size += h.Size
		}
	}
	if size != 70<<20 {
		t.Errorf("filler size = %d, want %d", size, 70<<20)
	}
	again, err := testimages.Large(ctx, t.TempDir(), 70)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, large), digest(t, again); a != b {
		t.Errorf("large digest not reproducible: %s != %s", a, b)
	}
}

func TestToolbox(t *testing.T) {
	// The toolbox rootfs is cached in the shared cache: cold, this takes
	// about a minute.
	ctx := context.Background()
	img, err := testimages.Toolbox(ctx, testimages.DefaultCacheDir())
	if err != nil {
		t.Fatal(err)
	}
	files := entries(t, img)
	for _, p := range []string{"usr/bin/tcpdump", "usr/bin/curl", "usr/bin/strace", "usr/bin/bash", "usr/bin/ps"} {
		if files[p] == nil {
			t.Errorf("toolbox lacks %s", p)
		}
	}
	if files["bin/ip"] == nil && files["usr/bin/ip"] == nil && files["sbin/ip"] == nil && files["usr/sbin/ip"] == nil {
		t.Error("toolbox lacks ip")
	}
}

func TestRegistryPush(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr, stop, err := testimages.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	img, err := testimages.Distroless(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := addr + "/ephem/distroless:test"
	if err := testimages.Push(ctx, img, ref); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(r, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("reading back %s: %v", ref, err)
	}
	if want := digest(t, img); desc.Digest != want {
		t.Errorf("registry digest = %s, want %s", desc.Digest, want)
	}
}

func keys(m map[string]*tar.Header) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
