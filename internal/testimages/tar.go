package testimages

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the fixed timestamp of every file and image built here.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// tarBuilder writes a tar stream with fixed owners and timestamps.
type tarBuilder struct {
	tw *tar.Writer
}

func (b tarBuilder) header(h *tar.Header) error {
	h.ModTime = Epoch
	h.Format = tar.FormatPAX
	if err := b.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing tar header for %s: %w", h.Name, err)
	}
	return nil
}

func (b tarBuilder) dir(name string, mode int64) error {
	return b.header(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode})
}

func (b tarBuilder) file(name string, mode int64, data []byte) error {
	if err := b.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	if _, err := b.tw.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func (b tarBuilder) fileFrom(name string, mode int64, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	return b.file(name, mode, data)
}

func (b tarBuilder) symlink(name, target string) error {
	return b.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
}

// dirs writes the directory entries leading to each name, once each.
func (b tarBuilder) dirs(seen map[string]bool, name string) error {
	d := path.Dir(name)
	if d == "." || d == "/" || seen[d] {
		return nil
	}
	if err := b.dirs(seen, d); err != nil {
		return err
	}
	seen[d] = true
	return b.dir(d, 0o755)
}

// cachedLayer returns a gzip-compressed layer stored in cacheDir under
// "layer-<k>.tar.gz", writing it with write the first time. The stored
// compressed bytes are what is pushed, so the digest is stable.
func cachedLayer(ctx context.Context, cacheDir, k string, level int, write func(b tarBuilder) error) (v1.Layer, error) {
	p, err := cachedFile(ctx, cacheDir, "layer-"+k+".tar.gz", func(_ context.Context, tmp string) error {
		return writeGzipTar(tmp, level, write)
	})
	if err != nil {
		return nil, err
	}
	return layerFromFile(p)
}

func writeGzipTar(dst string, level int, write func(b tarBuilder) error) (err error) {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("creating layer file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing layer file: %w", cerr)
		}
	}()
	zw, err := gzip.NewWriterLevel(f, level)
	if err != nil {
		return fmt.Errorf("creating gzip writer: %w", err)
	}
	tw := tar.NewWriter(zw)
	if err := write(tarBuilder{tw: tw}); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finishing tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finishing gzip: %w", err)
	}
	return nil
}

// gzipFile compresses the file src into dst.
func gzipFile(src, dst string, level int) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("opening %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", dst, cerr)
		}
	}()
	zw, err := gzip.NewWriterLevel(out, level)
	if err != nil {
		return fmt.Errorf("creating gzip writer: %w", err)
	}
	if _, err := io.Copy(zw, in); err != nil {
		return fmt.Errorf("compressing %s: %w", src, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finishing gzip of %s: %w", src, err)
	}
	return nil
}

func layerFromFile(p string) (v1.Layer, error) {
	l, err := tarball.LayerFromFile(p, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", filepath.Base(p), err)
	}
	return l, nil
}

// newImage assembles an OCI image for linux on the host architecture from
// layers and a runtime config, with fixed timestamps.
func newImage(layers []v1.Layer, cfg v1.Config, createdBy string) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: createdBy},
		})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("appending layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = runtime.GOARCH
	cf.OS = "linux"
	cf.Created = v1.Time{Time: Epoch}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting config: %w", err)
	}
	return img, nil
}
