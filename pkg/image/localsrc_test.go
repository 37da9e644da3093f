package image_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ephem-dev/ephem/pkg/image"
)

// assertOnly fails unless err wraps want and no other sentinel.
func assertOnly(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	for _, other := range []error{image.ErrInvalidReference, image.ErrNotFound, image.ErrUnreachable,
		image.ErrCorrupt, image.ErrAuth, image.ErrUnsupported, image.ErrNoSpace} {
		if !errors.Is(want, other) && errors.Is(err, other) {
			t.Errorf("error also wraps %v: %v", other, err)
		}
	}
}

// assertMentions fails unless err's text contains every one of words.
func assertMentions(t *testing.T, err error, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q: %v", w, err)
		}
	}
}

// TestOCILayoutMissingBlob checks that a blob missing from an OCI layout is
// corrupt local data (65) naming the layout and the digest, not an
// unreachable registry (68): the lstat's ENOENT is a syscall.Errno, which
// satisfies net.Error.
func TestOCILayoutMissingBlob(t *testing.T) {
	img := randomImage(t, 1024, 3)
	layers, _ := img.Layers()
	layer1, _ := layers[1].Digest()
	cfg, _ := img.ConfigName()
	for _, tc := range []struct {
		name string
		blob v1.Hash
	}{
		{"layer", layer1},
		{"config", cfg},
		{"manifest", digestOf(t, img)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := layout.Write(dir, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AppendImage(img); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, "blobs", tc.blob.Algorithm, tc.blob.Hex)); err != nil {
				t.Fatal(err)
			}
			cache := t.TempDir()
			_, err = openStore(t, cache).Ensure(context.Background(), "oci:"+dir, image.PullOptions{})
			assertOnly(t, err, image.ErrCorrupt)
			assertMentions(t, err, "OCI layout "+dir, tc.blob.String(), tc.name)
			if tmp := tmpEntries(t, cache); len(tmp) != 0 {
				t.Errorf("tmp/ not cleaned: %v", tmp)
			}
		})
	}
}

// TestDockerArchiveMissingLayer checks that a docker-archive tarball
// lacking a layer file is corrupt local data naming the archive and the
// layer's diffID, whichever layer it is.
func TestDockerArchiveMissingLayer(t *testing.T) {
	img := randomImage(t, 1024, 3)
	layers, _ := img.Layers()
	for _, i := range []int{0, 2} {
		d, _ := layers[i].Digest()
		diffID, _ := layers[i].DiffID()
		file := archiveWithout(t, img, d.Hex)
		_, err := openStore(t, t.TempDir()).Ensure(context.Background(), "docker-archive:"+file, image.PullOptions{})
		assertOnly(t, err, image.ErrCorrupt)
		assertMentions(t, err, "docker archive "+file, diffID.String())
	}
	cfg, _ := img.ConfigName()
	file := archiveWithout(t, img, cfg.Hex)
	_, err := openStore(t, t.TempDir()).Ensure(context.Background(), "docker-archive:"+file, image.PullOptions{})
	assertOnly(t, err, image.ErrCorrupt)
	assertMentions(t, err, "docker archive "+file, cfg.Hex)
}

// archiveWithout writes img as a docker-archive tarball without the entry
// whose name contains drop, and returns its path.
func archiveWithout(t *testing.T, img v1.Image, drop string) string {
	t.Helper()
	dir := t.TempDir()
	full := filepath.Join(dir, "full.tar")
	tag, _ := name.NewTag("example.com/tools:v1")
	if err := tarball.WriteToFile(full, tag, img); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(full) //nolint:gosec // test file
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	file := filepath.Join(dir, "partial.tar")
	out, err := os.Create(file) //nolint:gosec // test file
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	dropped := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, drop) {
			dropped = true
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil { //nolint:gosec // test data
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil || !dropped {
		t.Fatalf("writing %s: %v (dropped %v)", file, err, dropped)
	}
	return file
}
