package image_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

// BenchmarkEnsureWarm measures what every ephem run pays for an image that
// is already cached: Open, Ensure with PullMissing, Close. It must not grow
// with the image's size. The large image is 100 MB; set
// EPHEM_BENCH_LARGE_MB to change it (e.g. 500).
func BenchmarkEnsureWarm(b *testing.B) {
	large := int64(100)
	if v, err := strconv.ParseInt(os.Getenv("EPHEM_BENCH_LARGE_MB"), 10, 64); err == nil && v > 0 {
		large = v
	}
	const layers = 5
	for _, mb := range []int64{5, large} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			reg := newRegistry(b)
			ref := reg.ref(fmt.Sprintf("bench:%d", mb))
			push(b, ref, randomImage(b, mb<<20/layers, layers))
			dir := b.TempDir()
			s := openStore(b, dir)
			ensure(b, s, ref, spec.PullMissing)
			_ = s.Close()
			reg.srv.Close() // warm means offline
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				s, err := image.Open(dir)
				if err != nil {
					b.Fatal(err)
				}
				img, err := s.Ensure(ctx, ref, image.PullOptions{Policy: spec.PullMissing})
				if err != nil || len(img.Layers) != layers {
					b.Fatalf("Ensure: %v, %v", img, err)
				}
				_ = s.Close()
			}
		})
	}
}

// BenchmarkEnsureCold measures a first pull from an in-process registry:
// download, digest and diffID verification, and unpacking of 5 layers of
// 4 MB each (incompressible). Set EPHEM_BENCH_COLD_MB to change the size.
func BenchmarkEnsureCold(b *testing.B) {
	mb := int64(20)
	if v, err := strconv.ParseInt(os.Getenv("EPHEM_BENCH_COLD_MB"), 10, 64); err == nil && v > 0 {
		mb = v
	}
	const layers = 5
	reg := newRegistry(b)
	ref := reg.ref("cold:1")
	push(b, ref, randomImage(b, mb<<20/layers, layers))
	ctx := context.Background()
	b.SetBytes(mb << 20)
	for b.Loop() {
		s := openStore(b, b.TempDir())
		if _, err := s.Ensure(ctx, ref, image.PullOptions{}); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
}
