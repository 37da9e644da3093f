package image

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// refNameAnnotation names an image in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// retryBackoff is how remote requests are retried on transient failures.
var retryBackoff = remote.Backoff{Duration: 500_000_000, Factor: 3, Jitter: 0.1, Steps: 3}

// source is a resolved image, ready to have its layers read.
type source struct {
	limit  *unpackLimit // what this pull may unpack
	timing *pullTiming  // phases of the pull (EPHEM_DEBUG_TIMING), or nil
	img    v1.Image
	digest v1.Hash // manifest digest; config digest for docker-archive
	// compressed says to read layers with Compressed() and verify their
	// blob digest; docker-archive layers are read with Uncompressed(), so a
	// tarball of uncompressed layers is never recompressed to compute one.
	compressed bool
	// origin names a local source ("OCI layout DIR", "docker archive
	// FILE") in errors; it is empty for a registry.
	origin string
}

// HostPlatform returns the platform of this host: runtime.GOOS and GOARCH,
// with variant v7 on arm and v8 on arm64.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm":
		p.Variant = "v7"
	case "arm64":
		p.Variant = "v8"
	}
	return p
}

// platformString formats p as os/arch[/variant].
func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformMatches reports whether an image for got runs where want is asked
// for. An empty wanted variant accepts any; arm64 treats "" and v8 alike.
func platformMatches(want, got v1.Platform) bool {
	if want.OS != got.OS || want.Architecture != got.Architecture {
		return false
	}
	wv, gv := want.Variant, got.Variant
	if want.Architecture == "arm64" {
		wv, gv = strings.TrimPrefix(wv, "v8"), strings.TrimPrefix(gv, "v8")
	}
	return wv == "" || gv == "" || wv == gv
}

// pickPlatform returns the manifest of im for want, or an ErrUnsupported
// error listing the platforms im offers.
func pickPlatform(im *v1.IndexManifest, want v1.Platform) (v1.Descriptor, error) {
	var avail []string
	var images []v1.Descriptor
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() && d.MediaType != "" {
			continue
		}
		images = append(images, d)
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		if platformMatches(want, *d.Platform) {
			return d, nil
		}
		avail = append(avail, platformString(*d.Platform))
	}
	if len(images) == 1 && images[0].Platform == nil {
		return images[0], nil // a single image that does not say its platform
	}
	slices.Sort(avail)
	return v1.Descriptor{}, fmt.Errorf("%w: the index has no image for %s (available: %s); choose another platform or image",
		ErrUnsupported, platformString(want), strings.Join(slices.Compact(avail), ", "))
}

// resolve finds the image that ref names for platform.
func resolve(ctx context.Context, ref Reference, platform v1.Platform, insecure []string, stall time.Duration) (*source, error) {
	var (
		src *source
		err error
	)
	switch ref.kind {
	case KindLayout:
		src, err = resolveLayout(ref, platform)
	case KindArchive:
		src, err = resolveArchive(ref)
	default:
		src, err = resolveRemote(ctx, ref.reg, platform, insecure, stall)
	}
	if err != nil {
		return nil, err
	}
	return src, nil
}

// plainHTTPGuard refuses plain-HTTP requests to hosts not allowed them.
// go-containerregistry also falls back to HTTP for private (RFC 1918)
// addresses; ephem, like Docker, allows it only for loopback registries and
// those the user lists as insecure.
type plainHTTPGuard struct {
	base     http.RoundTripper
	insecure []string
}

// RoundTrip implements http.RoundTripper.
func (g plainHTTPGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !isInsecure(req.URL.Host, g.insecure) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: list it as an insecure registry to allow it", req.URL.Host)
	}
	return g.base.RoundTrip(req)
}

// keychain is authn.DefaultKeychain (Docker's config.json, as docker
// login writes it), with a file that does not parse reported as such.
type keychain struct{}

// Resolve implements authn.Keychain.
func (keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	a, err := authn.DefaultKeychain.Resolve(r)
	if err != nil {
		return nil, fmt.Errorf("%w: reading registry credentials: %w: fix the file, or point DOCKER_CONFIG at another directory", ErrLocalConfig, err)
	}
	return a, nil
}

// remoteOptions are the options of every registry request.
func remoteOptions(ctx context.Context, insecure []string, stall time.Duration) []remote.Option {
	if stall <= 0 {
		stall = DefaultStallTimeout
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(plainHTTPGuard{base: bounded{base: remote.DefaultTransport, stall: stall}, insecure: insecure}),
		remote.WithAuthFromKeychain(keychain{}),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithUserAgent("ephem"),
	}
}

// resolveRemote fetches ref's manifest, picking platform from an index.
func resolveRemote(ctx context.Context, ref name.Reference, platform v1.Platform, insecure []string, stall time.Duration) (*source, error) {
	desc, err := remote.Get(ref, remoteOptions(ctx, insecure, stall)...)
	if err != nil {
		return nil, fmt.Errorf("fetching manifest: %w", classify(err))
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("reading index: %w", dataErr(err))
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading index: %w", dataErr(err))
		}
		d, err := pickPlatform(im, platform)
		if err != nil {
			return nil, err
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("fetching manifest %s: %w", d.Digest, dataErr(err))
		}
		return &source{img: img, digest: d.Digest, compressed: true}, nil
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("reading manifest: %w", dataErr(err))
		}
		return &source{img: img, digest: desc.Digest, compressed: true}, nil
	}
	return nil, fmt.Errorf("%w: manifest media type %s is not an OCI or Docker v2 image", ErrUnsupported, desc.MediaType)
}

// checkConfigPlatform refuses an image whose config names another platform
// than want. Configs that name none are accepted.
func checkConfigPlatform(cfg *v1.ConfigFile, want v1.Platform) error {
	if cfg.OS == "" || cfg.Architecture == "" {
		return nil
	}
	got := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if !platformMatches(want, got) {
		return fmt.Errorf("%w: the image is for %s, not %s", ErrUnsupported, platformString(got), platformString(want))
	}
	return nil
}

// layerMediaTypeOK reports whether a layer media type is a file system layer.
func layerMediaTypeOK(mt types.MediaType) bool {
	return mt == "" || mt.IsLayer()
}
