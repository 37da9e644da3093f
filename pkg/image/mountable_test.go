package image_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ephem-dev/ephem/pkg/image"
)

// layoutOf writes img, made of layers ls, alone into a fresh OCI layout,
// blob by blob, and returns its oci: reference. (The layout package's
// AppendImage, like img.Layers of a mutated image, takes time quadratic in
// the number of layers: seconds for hundreds.)
func layoutOf(t *testing.T, img v1.Image, ls []v1.Layer) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteBlob(d, rc); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := img.RawConfigFile()
	cfgName, _ := img.ConfigName()
	m, _ := img.RawManifest()
	mt, _ := img.MediaType()
	desc := v1.Descriptor{MediaType: mt, Digest: digestOf(t, img), Size: int64(len(m))}
	for _, err := range []error{p.WriteBlob(cfgName, io.NopCloser(bytes.NewReader(cfg))),
		p.WriteBlob(desc.Digest, io.NopCloser(bytes.NewReader(m))), p.AppendDescriptor(desc)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return "oci:" + dir
}

// layered returns an image of n distinct one-file layers, and its layers.
func layered(t *testing.T, n int) (v1.Image, []v1.Layer) {
	t.Helper()
	ls := make([]v1.Layer, n)
	for i := range ls {
		ls[i] = tarLayer(t, fmt.Sprintf("f%d=%d", i, i))
	}
	return appendLayers(t, ls)
}

// opaque returns an image of n distinct layers that are not tar streams
// (enough for what Ensure checks before it unpacks anything), and its
// layers.
func opaque(t *testing.T, n int) (v1.Image, []v1.Layer) {
	t.Helper()
	ls := make([]v1.Layer, n)
	for i := range ls {
		ls[i] = static.NewLayer([]byte(fmt.Sprint(i)), types.OCILayer)
	}
	return appendLayers(t, ls)
}

func appendLayers(t *testing.T, ls []v1.Layer) (v1.Image, []v1.Layer) {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img, ls
}

// TestEnsureUnmountableImage checks that an image one overlay mount cannot
// take fails in Ensure with ErrUnsupported saying why, before any layer is
// unpacked, instead of as a raw mount error in the local engine.
func TestEnsureUnmountableImage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers int
		plus   bool // the kernel takes "lowerdir+"
		words  []string
	}{
		{"no layers", 0, true, []string{"no layers"}},
		{"over the overlay stack", image.MaxOverlayLayers + 1, true,
			[]string{fmt.Sprint(image.MaxOverlayLayers + 1), "layers", "squash"}},
		// The cache's layer paths are over 100 bytes each here: 45 of
		// them do not fit in a 4 KiB page of mount options.
		{"over the option page", 45, false, []string{"45 layers", "mount options", "Linux 6.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer image.SetLowerdirPlus(tc.plus)()
			dir := t.TempDir()
			img, ls := opaque(t, tc.layers)
			ref := layoutOf(t, img, ls)
			_, err := openStore(t, dir).Ensure(context.Background(), ref, image.PullOptions{})
			assertOnly(t, err, image.ErrUnsupported)
			assertMentions(t, err, tc.words...)
			if ls := layerDirs(t, dir); len(ls) != 0 {
				t.Errorf("%d layers unpacked before the refusal", len(ls))
			}
		})
	}
}

// TestEnsureMountableImage checks the other side of the limits: 45 layers
// are fine where the kernel takes "lowerdir+", and a few where it does not.
func TestEnsureMountableImage(t *testing.T) {
	for _, tc := range []struct {
		n    int
		plus bool
	}{{45, true}, {8, false}} {
		t.Run(fmt.Sprintf("%d layers, lowerdir+ %v", tc.n, tc.plus), func(t *testing.T) {
			defer image.SetLowerdirPlus(tc.plus)()
			img, ls := layered(t, tc.n)
			got := ensure(t, openStore(t, t.TempDir()), layoutOf(t, img, ls), "")
			if len(got.Layers) != tc.n {
				t.Errorf("%d layers, want %d", len(got.Layers), tc.n)
			}
		})
	}
}
