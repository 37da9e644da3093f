package image_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

// withConfig returns img with a config naming platform p and a command.
func withConfig(t testing.TB, img v1.Image, p v1.Platform) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config = v1.Config{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "echo " + p.Architecture},
		Env: []string{"PATH=/bin"}, WorkingDir: "/work", User: "1000"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestEnsurePullPolicies(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.ref("tools/busybox:1")
	host := image.HostPlatform()
	img1 := withConfig(t, randomImage(t, 2048, 3), host)
	push(t, ref, img1)
	dir := t.TempDir()
	s := openStore(t, dir)

	got := ensure(t, s, ref, spec.PullMissing)
	if got.Digest != digestOf(t, img1) {
		t.Errorf("digest = %s, want %s", got.Digest, digestOf(t, img1))
	}
	if got.Ref != ref {
		t.Errorf("Ref = %q, want %q", got.Ref, ref)
	}
	if diff := cmp.Diff([]string{"/bin/sh"}, got.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if got.Config.WorkingDir != "/work" || got.Config.User != "1000" {
		t.Errorf("config = %+v", got.Config)
	}
	layers, _ := img1.Layers()
	if len(got.Layers) != len(layers) {
		t.Fatalf("%d layer dirs, want %d", len(got.Layers), len(layers))
	}
	for i, l := range layers {
		d, _ := l.DiffID()
		if want := filepath.Join(dir, "layers", "sha256", d.Hex, "fs"); got.Layers[i] != want {
			t.Errorf("layer %d = %s, want %s (base first)", i, got.Layers[i], want)
		}
		if ents, err := os.ReadDir(got.Layers[i]); err != nil || len(ents) == 0 {
			t.Errorf("layer %d is empty (%v)", i, err)
		}
	}
	if _, blobs := reg.counts(); blobs != 4 { // 3 layers and the config
		t.Errorf("%d blob GETs on the first pull, want 4", blobs)
	}

	// The tag moves; PullMissing keeps using the cached mapping, without
	// a single request.
	img2 := withConfig(t, mutateAppend(t, img1, randomImage(t, 1024, 1)), host)
	push(t, ref, img2)
	before, _ := reg.counts()
	if got := ensure(t, openStore(t, dir), ref, spec.PullMissing); got.Digest != digestOf(t, img1) {
		t.Errorf("PullMissing resolved again: digest %s", got.Digest)
	}
	if after, _ := reg.counts(); after != before {
		t.Errorf("PullMissing with a cached ref made %d requests", after-before)
	}
	if got := ensure(t, s, ref, spec.PullNever); got.Digest != digestOf(t, img1) {
		t.Errorf("PullNever digest %s, want the cached %s", got.Digest, digestOf(t, img1))
	}

	// PullAlways resolves again and downloads only the new layer and config.
	_, blobsBefore := reg.counts()
	if got := ensure(t, s, ref, spec.PullAlways); got.Digest != digestOf(t, img2) {
		t.Errorf("PullAlways digest %s, want %s", got.Digest, digestOf(t, img2))
	}
	if _, blobs := reg.counts(); blobs-blobsBefore != 2 {
		t.Errorf("PullAlways fetched %d blobs, want 2 (new layer and config)", blobs-blobsBefore)
	}
	// And the mapping now points to the new image.
	if got := ensure(t, s, ref, spec.PullNever); got.Digest != digestOf(t, img2) {
		t.Errorf("after PullAlways, PullNever digest %s, want %s", got.Digest, digestOf(t, img2))
	}

	// PullNever on an uncached ref: ErrNotFound, telling what to do.
	_, err := s.Ensure(context.Background(), reg.ref("tools/other:1"), image.PullOptions{Policy: spec.PullNever})
	if !errors.Is(err, image.ErrNotFound) || !strings.Contains(err.Error(), "--pull missing") {
		t.Errorf("PullNever uncached: %v, want ErrNotFound mentioning --pull missing", err)
	}
}

// TestEnsureMissingIsOffline checks that a cached image is returned with
// the registry gone.
func TestEnsureMissingIsOffline(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.ref("offline:1")
	push(t, ref, randomImage(t, 1024, 2))
	dir := t.TempDir()
	first := ensure(t, openStore(t, dir), ref, spec.PullMissing)
	reg.srv.Close()
	got := ensure(t, openStore(t, dir), ref, spec.PullMissing)
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("offline Ensure differs (-first +got):\n%s", diff)
	}
	_, err := openStore(t, dir).Ensure(context.Background(), ref, image.PullOptions{Policy: spec.PullAlways})
	if !errors.Is(err, image.ErrUnreachable) {
		t.Errorf("PullAlways with the registry down: %v, want ErrUnreachable", err)
	}
}

func mutateAppend(t testing.TB, base, top v1.Image) v1.Image {
	t.Helper()
	ls, err := top.Layers()
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// platformIndex returns an index with one image per platform.
func platformIndex(t testing.TB, plats ...v1.Platform) (v1.ImageIndex, map[string]v1.Image) {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	imgs := map[string]v1.Image{}
	for _, p := range plats {
		img := withConfig(t, randomImage(t, 1024, 2), p)
		imgs[p.Architecture] = img
		pp := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pp}})
	}
	return idx, imgs
}

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

func TestEnsurePlatformFromIndex(t *testing.T) {
	reg := newRegistry(t)
	idx, imgs := platformIndex(t, amd64, arm64)
	ref := reg.ref("multi:1")
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, t.TempDir())
	for _, tc := range []struct {
		name string
		p    *v1.Platform
		want v1.Image
	}{
		{"arm64", &v1.Platform{OS: "linux", Architecture: "arm64"}, imgs["arm64"]},
		{"amd64", &amd64, imgs["amd64"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Ensure(context.Background(), ref, image.PullOptions{Platform: tc.p})
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != digestOf(t, tc.want) {
				t.Errorf("digest %s, want %s", got.Digest, digestOf(t, tc.want))
			}
			if got.Config.Cmd[1] != "echo "+tc.name {
				t.Errorf("config of the wrong image: %v", got.Config.Cmd)
			}
		})
	}
	_, err := s.Ensure(context.Background(), ref, image.PullOptions{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}})
	if !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Errorf("s390x: %v, want ErrUnsupported listing the platforms", err)
	}
	// Both platforms are cached side by side.
	es, err := s.List(context.Background())
	if err != nil || len(es) != 2 {
		t.Fatalf("List = %v, %v; want 2 entries", es, err)
	}
}

func TestEnsureErrors(t *testing.T) {
	reg := newRegistry(t)
	push(t, reg.ref("present:1"), randomImage(t, 1024, 1))
	reg.setTamper(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/private/") {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		return false
	})
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()

	s := openStore(t, t.TempDir())
	for _, tc := range []struct {
		name, ref string
		want      error
	}{
		{"unreachable", closed + "/x/y:1", image.ErrUnreachable},
		{"missing tag", reg.ref("present:2"), image.ErrNotFound},
		{"missing repository", reg.ref("absent:1"), image.ErrNotFound},
		{"forbidden", reg.ref("private/img:1"), image.ErrAuth},
		{"malformed", "Not A Reference!", image.ErrInvalidReference},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Ensure(context.Background(), tc.ref, image.PullOptions{Policy: spec.PullAlways})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Ensure = %v, want %v", err, tc.want)
			}
			for _, other := range []error{image.ErrInvalidReference, image.ErrNotFound, image.ErrUnreachable,
				image.ErrCorrupt, image.ErrAuth, image.ErrUnsupported} {
				if !errors.Is(tc.want, other) && errors.Is(err, other) {
					t.Errorf("error also wraps %v: %v", other, err)
				}
			}
		})
	}
}

func TestEnsureCorruptBlob(t *testing.T) {
	for _, mode := range []string{"flip", "truncate", "short-body"} {
		t.Run(mode, func(t *testing.T) {
			reg := newRegistry(t)
			img := randomImage(t, 64<<10, 2)
			push(t, reg.ref("bad:1"), img)
			layers, _ := img.Layers()
			victim, _ := layers[1].Digest()
			reg.setTamper(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, victim.String()) {
					return false
				}
				rc, _ := layers[1].Compressed()
				b, _ := io.ReadAll(rc)
				switch mode {
				case "flip":
					b[len(b)/2] ^= 0xff
				case "truncate":
					b = b[:len(b)/2]
				case "short-body": // promise the full length, send half
					w.Header().Set("Content-Length", fmt.Sprint(len(b)))
					_, _ = w.Write(b[:len(b)/2])
					return true
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(b)))
				_, _ = w.Write(b)
				return true
			})
			dir := t.TempDir()
			s := openStore(t, dir)
			_, err := s.Ensure(context.Background(), reg.ref("bad:1"), image.PullOptions{})
			if !errors.Is(err, image.ErrCorrupt) {
				t.Fatalf("Ensure = %v, want ErrCorrupt", err)
			}
			d1, _ := layers[1].DiffID()
			if slices.Contains(layerDirs(t, dir), d1.Hex) {
				t.Errorf("the corrupt layer has a cache entry")
			}
			if tmp := tmpEntries(t, dir); len(tmp) != 0 {
				t.Errorf("tmp/ not cleaned: %v", tmp)
			}
			if es, _ := s.List(context.Background()); len(es) != 0 {
				t.Errorf("a corrupt image was recorded: %v", es)
			}
			// Once the registry serves the right bytes, the pull succeeds.
			reg.setTamper(nil)
			ensure(t, s, reg.ref("bad:1"), spec.PullMissing)
		})
	}
}

// TestEnsureRepeatedLayer checks that a layer an image lists twice appears
// once in Layers, at its topmost position (overlayfs refuses duplicates).
func TestEnsureRepeatedLayer(t *testing.T) {
	a, b := randomImage(t, 1024, 1), randomImage(t, 1024, 1)
	la, _ := a.Layers()
	lb, _ := b.Layers()
	img, err := mutate.AppendLayers(empty.Image, la[0], lb[0], la[0])
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t)
	push(t, reg.ref("repeat:1"), img)
	dir := t.TempDir()
	got := ensure(t, openStore(t, dir), reg.ref("repeat:1"), spec.PullMissing)
	da, _ := la[0].DiffID()
	db, _ := lb[0].DiffID()
	want := []string{
		filepath.Join(dir, "layers/sha256", db.Hex, "fs"),
		filepath.Join(dir, "layers/sha256", da.Hex, "fs"),
	}
	if diff := cmp.Diff(want, got.Layers); diff != "" {
		t.Errorf("Layers (-want +got):\n%s", diff)
	}
}

func TestEnsureProgress(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.ref("progress:1")
	img := randomImage(t, 1000, 2)
	push(t, ref, img)
	var buf strings.Builder
	s := openStore(t, t.TempDir())
	if _, err := s.Ensure(context.Background(), ref, image.PullOptions{Progress: &buf}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 || lines[0] != "pulling "+ref {
		t.Fatalf("progress:\n%s", buf.String())
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		short := d.String()[:len("sha256:")+12]
		for _, state := range []string{"pulling", "done"} {
			want := fmt.Sprintf("layer %s %s %s", short, humanSize(size), state)
			if !slices.Contains(lines, want) {
				t.Errorf("no line %q in\n%s", want, buf.String())
			}
		}
	}
	// A warm Ensure prints nothing.
	buf.Reset()
	if _, err := s.Ensure(context.Background(), ref, image.PullOptions{Progress: &buf}); err != nil || buf.Len() != 0 {
		t.Errorf("warm Ensure: %v, printed %q", err, buf.String())
	}
}

// humanSize mirrors the package's size format for sizes below 1 kB and up.
func humanSize(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f kB", float64(n)/1000)
}
