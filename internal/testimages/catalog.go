package testimages

import (
	"context"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Builder builds one test image, caching what it can under cacheDir.
type Builder func(ctx context.Context, cacheDir string) (v1.Image, error)

// Tag is the tag of the standard images in a registry.
const Tag = "test"

// Standard maps the names of the standard test images to their builders.
var Standard = map[string]Builder{
	"pause":      Pause,
	"busybox":    Busybox,
	"distroless": Distroless,
	"toolbox":    Toolbox,
}

// Names returns the names of the standard images, sorted.
func Names() []string {
	names := make([]string, 0, len(Standard))
	for n := range Standard {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Ref returns the reference of the standard image name in registry, for
// example "127.0.0.1:5050/ephem/busybox:test".
func Ref(registry, name string) string {
	return fmt.Sprintf("%s/ephem/%s:%s", registry, name, Tag)
}

// LargeRef returns the reference of Large(sizeMB) in registry.
func LargeRef(registry string, sizeMB int) string {
	return fmt.Sprintf("%s/ephem/large:%dmb", registry, sizeMB)
}
