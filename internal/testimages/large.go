package testimages

import (
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// largeChunkMB is the size of each filler layer of Large.
const largeChunkMB = 64

// Large returns busybox plus filler layers of deterministic pseudo-random
// (incompressible) data totalling sizeMB MiB, for pull and start benchmarks.
// The same sizeMB always yields the same digest. Layers are cached.
func Large(ctx context.Context, cacheDir string, sizeMB int) (v1.Image, error) {
	if sizeMB <= 0 {
		return nil, fmt.Errorf("building large image: size %d MB is not positive", sizeMB)
	}
	base, err := busyboxLayer(ctx, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("building large image: %w", err)
	}
	layers := []v1.Layer{base}
	for i := 0; i*largeChunkMB < sizeMB; i++ {
		mb := min(largeChunkMB, sizeMB-i*largeChunkMB)
		l, err := fillerLayer(ctx, cacheDir, i, mb)
		if err != nil {
			return nil, fmt.Errorf("building large image: %w", err)
		}
		layers = append(layers, l)
	}
	cfg := v1.Config{Cmd: []string{"sh"}, Env: []string{defaultPath}}
	return newImage(layers, cfg, fmt.Sprintf("ephem testimages large %d MB", sizeMB))
}

// fillerLayer holds /filler/<i>.bin: mb MiB from a ChaCha8 stream seeded by
// i and mb. It is stored uncompressed inside gzip (random data does not
// compress), which keeps building and pulling it cheap on CPU.
func fillerLayer(ctx context.Context, cacheDir string, i, mb int) (v1.Layer, error) {
	k := key("filler-v1", fmt.Sprint(i), fmt.Sprint(mb))
	return cachedLayer(ctx, cacheDir, k, gzip.NoCompression, func(b tarBuilder) error {
		if err := b.dir("filler", 0o755); err != nil {
			return err
		}
		var seed [32]byte
		copy(seed[:], fmt.Sprintf("ephem-filler-%d-%d", i, mb))
		data := make([]byte, mb<<20)
		if _, err := rand.NewChaCha8(seed).Read(data); err != nil {
			return fmt.Errorf("generating filler: %w", err)
		}
		return b.file(fmt.Sprintf("filler/%d.bin", i), 0o644, data)
	})
}
