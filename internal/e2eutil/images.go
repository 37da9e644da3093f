package e2eutil

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ephem-dev/ephem/internal/testimages"
)

// Image returns the standard test image called name ("busybox",
// "distroless", "toolbox", "pause"; see testimages.Standard), built in
// testimages' shared cache (testimages.DefaultCacheDir).
func Image(t testing.TB, name string) v1.Image {
	t.Helper()
	b, ok := testimages.Standard[name]
	if !ok {
		t.Fatalf("unknown test image %q (known: %v)", name, testimages.Names())
	}
	img, err := b(context.Background(), testimages.DefaultCacheDir())
	if err != nil {
		t.Fatalf("building test image %s: %v", name, err)
	}
	return img
}

// StartRegistry runs Debian's docker-registry on 127.0.0.1 with its storage
// in a t.TempDir, stops it in t's Cleanup, and returns its address
// (host:port). Push to it with PushImage; ephem pulls from 127.0.0.1
// registries over plain HTTP.
func StartRegistry(t testing.TB) string {
	t.Helper()
	addr, stop, err := testimages.StartRegistry(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("starting a registry: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping registry %s: %v", addr, err)
		}
	})
	return addr
}

// PushImage pushes img to the registry at addr as name ("ephem/busybox" or
// "ephem/busybox:v1"; the tag defaults to testimages.Tag) and returns the
// reference, such as "127.0.0.1:40123/ephem/busybox:test".
func PushImage(t testing.TB, addr, name string, img v1.Image) string {
	t.Helper()
	ref := addr + "/" + name
	if i := strings.LastIndex(name, "/"); !strings.Contains(name[i+1:], ":") && !strings.Contains(name, "@") {
		ref += ":" + testimages.Tag
	}
	if err := testimages.Push(context.Background(), img, ref); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// WriteLayout writes img into a new OCI layout in a t.TempDir under the
// ref name tag and returns the image reference ephem takes for it,
// "oci:DIR:TAG".
func WriteLayout(t testing.TB, img v1.Image, tag string) string {
	t.Helper()
	dir := t.TempDir()
	if err := testimages.WriteLayout(dir, img, tag); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":" + tag
}
