package image_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

func TestEnsureOCILayout(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	one := randomImage(t, 1024, 2)
	if err := p.AppendImage(one, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, t.TempDir())
	got, err := s.Ensure(context.Background(), "oci:"+dir+":v1", image.PullOptions{Policy: spec.PullNever})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digestOf(t, one) || got.Ref != "oci:"+dir+":v1" || len(got.Layers) != 2 {
		t.Errorf("got %+v", got)
	}
	// Without a tag, the single image is used.
	if got, err := s.Ensure(context.Background(), "oci:"+dir, image.PullOptions{}); err != nil || got.Digest != digestOf(t, one) {
		t.Errorf("untagged: %v, %v", got, err)
	}
	// The source is read each time: a retagged layout is seen at once, even
	// with PullNever, and the unchanged layer is reused.
	two := mutateAppend(t, one, randomImage(t, 1024, 1))
	v1Tag := map[string]string{"org.opencontainers.image.ref.name": "v1"}
	if err := p.ReplaceImage(two, match.Annotation("org.opencontainers.image.ref.name", "v1"), layout.WithAnnotations(v1Tag)); err != nil {
		t.Fatal(err)
	}
	got2, err := s.Ensure(context.Background(), "oci:"+dir+":v1", image.PullOptions{Policy: spec.PullNever})
	if err != nil || got2.Digest != digestOf(t, two) {
		t.Fatalf("retagged layout: %v, %v; want digest %s", got2, err, digestOf(t, two))
	}
	if diff := cmp.Diff(got.Layers, got2.Layers[:2]); diff != "" {
		t.Errorf("base layers not shared (-old +new):\n%s", diff)
	}

	// A multi-platform index under a second tag: resolved from the source
	// each time, so replacing it is seen even with PullMissing.
	idx, imgs := platformIndex(t, amd64, arm64)
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "multi"})); err != nil {
		t.Fatal(err)
	}
	got, err = s.Ensure(context.Background(), "oci:"+dir+":multi", image.PullOptions{Platform: &arm64})
	if err != nil || got.Digest != digestOf(t, imgs["arm64"]) {
		t.Fatalf("multi arm64: %v, %v", got, err)
	}
	for _, tc := range []struct {
		ref  string
		want error
	}{
		{"oci:" + dir, image.ErrInvalidReference}, // two images now: ambiguous
		{"oci:" + dir + ":nope", image.ErrNotFound},
		{"oci:" + filepath.Join(dir, "missing"), image.ErrNotFound},
		{"oci:", image.ErrInvalidReference},
	} {
		if _, err := s.Ensure(context.Background(), tc.ref, image.PullOptions{}); !errors.Is(err, tc.want) {
			t.Errorf("Ensure(%s) = %v, want %v", tc.ref, err, tc.want)
		}
	}
}

func TestEnsureDockerArchive(t *testing.T) {
	dir := t.TempDir()
	img := withConfig(t, randomImage(t, 1024, 2), image.HostPlatform())
	tag, _ := name.NewTag("example.com/tools:v2")
	file := filepath.Join(dir, "tools.tar")
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	s := openStore(t, t.TempDir())
	for _, ref := range []string{"docker-archive:" + file, "docker-archive:" + file + ":example.com/tools:v2"} {
		got, err := s.Ensure(context.Background(), ref, image.PullOptions{})
		if err != nil {
			t.Fatalf("Ensure(%s): %v", ref, err)
		}
		if got.Digest != cfgName || len(got.Layers) != 2 || got.Config.Entrypoint[0] != "/bin/sh" {
			t.Errorf("Ensure(%s) = %+v", ref, got)
		}
	}
	for _, tc := range []struct {
		ref  string
		want error
	}{
		{"docker-archive:" + file + ":example.com/tools:v3", image.ErrNotFound},
		{"docker-archive:" + filepath.Join(dir, "missing.tar"), image.ErrNotFound},
		{"docker-archive:", image.ErrInvalidReference},
	} {
		if _, err := s.Ensure(context.Background(), tc.ref, image.PullOptions{}); !errors.Is(err, tc.want) {
			t.Errorf("Ensure(%s) = %v, want %v", tc.ref, err, tc.want)
		}
	}
}

// TestEnsureLayoutFullNames: a layout of two images annotated with full
// names, as hack/images writes it, serves each by oci:DIR:NAME.
func TestEnsureLayoutFullNames(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	one, two := randomImage(t, 512, 1), randomImage(t, 512, 1)
	names := []string{"ephem.local/ephem/busybox:test", "ephem.local/ephem/toolbox:test"}
	for i, img := range []v1.Image{one, two} {
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": names[i]})); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, t.TempDir())
	for i, img := range []v1.Image{one, two} {
		got, err := s.Ensure(context.Background(), "oci:"+dir+":"+names[i], image.PullOptions{})
		if err != nil || got.Digest != digestOf(t, img) {
			t.Errorf("oci:DIR:%s = %v, %v; want digest %s", names[i], got, err, digestOf(t, img))
		}
	}
}
