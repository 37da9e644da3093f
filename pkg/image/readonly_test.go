package image_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"golang.org/x/sys/unix"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

// readOnly makes dir a read-only bind mount of itself until the test ends.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind-mounting %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting %s read-only: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); !errors.Is(err, unix.EROFS) {
		t.Fatalf("writing into the read-only cache: %v, want EROFS", err)
	}
}

// TestEnsureReadOnlyCache checks that a complete cache on a read-only
// mount serves what it holds under --pull never and missing: the layers'
// lock files are opened read-only to pin them, and the reference record of
// a local source is not rewritten.
func TestEnsureReadOnlyCache(t *testing.T) {
	reg := newRegistry(t)
	remoteRef := reg.ref("ro/tools:1")
	push(t, remoteRef, randomImage(t, 1024, 2))
	src := t.TempDir()
	p, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(randomImage(t, 1024, 2)); err != nil {
		t.Fatal(err)
	}
	localRef := "oci:" + src
	dir := t.TempDir()
	want := map[string]*image.Image{}
	func() {
		s, err := image.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, ref := range []string{remoteRef, localRef} {
			want[ref] = ensure(t, s, ref, spec.PullMissing)
		}
	}()
	reg.srv.Close() // from here on, only the cache can answer
	readOnly(t, dir)

	for _, ref := range []string{remoteRef, localRef} {
		for _, policy := range []spec.PullPolicy{spec.PullNever, spec.PullMissing} {
			s := openStore(t, dir)
			got, err := s.Ensure(context.Background(), ref, image.PullOptions{Policy: policy})
			if err != nil {
				t.Errorf("Ensure(%s, %s) on a read-only cache: %v", ref, policy, err)
				continue
			}
			if diff := cmp.Diff(want[ref], got); diff != "" {
				t.Errorf("Ensure(%s, %s) on a read-only cache (-want +got):\n%s", ref, policy, diff)
			}
			if len(s.Pins()) != len(got.Layers) {
				t.Errorf("Ensure(%s, %s): %d layers pinned, want %d", ref, policy, len(s.Pins()), len(got.Layers))
			}
		}
	}
	// What the cache lacks is still reported as not cached.
	_, err = openStore(t, dir).Ensure(context.Background(), reg.ref("ro/other:1"), image.PullOptions{Policy: spec.PullNever})
	assertOnly(t, err, image.ErrNotFound)
}
