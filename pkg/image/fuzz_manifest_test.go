package image_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

// FuzzManifest serves arbitrary bytes as an image's manifest (or index),
// from a registry that holds a real image's blobs, and pulls it: the pull
// never panics or hangs, and a manifest it cannot use fails with one of the
// package's sentinels (65, 67, 68, 69, 77), never an internal error (70).
// Run it for longer with:
//
//	go test ./pkg/image -run '^$' -fuzz FuzzManifest -fuzztime 10m
func FuzzManifest(f *testing.F) {
	tr := newRegistry(f)
	img := randomImage(f, 256, 2)
	push(f, tr.ref("fuzz/img:real"), img)
	valid, err := img.RawManifest()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(strings.Replace(string(valid), `"size":`, `"size":-`, 1)))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` +
		strings.Repeat("0", 64) + `","size":10,"platform":{"architecture":"amd64","os":"linux"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"layers":[],"config":{}}`))
	f.Add([]byte(`not json`))
	var body []byte
	tr.setTamper(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/manifests/fuzz") {
			return false
		}
		typ := "application/vnd.oci.image.manifest.v1+json"
		if strings.Contains(string(body), `"manifests"`) {
			typ = "application/vnd.oci.image.index.v1+json"
		}
		w.Header().Set("Content-Type", typ)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
		return true
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		body = data
		s := openStore(t, t.TempDir())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := s.Ensure(ctx, tr.ref("fuzz/img:fuzz"), image.PullOptions{Policy: spec.PullAlways, StallTimeout: 5 * time.Second})
		checkSentinel(ctx, t, err)
	})
}

// checkSentinel fails t unless err is nil or wraps one of the package's
// sentinels, and the pull ended before ctx did.
func checkSentinel(ctx context.Context, t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		t.Fatalf("the pull did not end within 20s: %v", err)
	}
	for _, s := range []error{image.ErrInvalidReference, image.ErrNotFound, image.ErrUnreachable, image.ErrCorrupt,
		image.ErrAuth, image.ErrUnsupported, image.ErrNoSpace, image.ErrLocalConfig} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %v wraps none of the package's sentinels (exit 70)", err)
}

// FuzzConfig serves arbitrary bytes as an image's config blob, named by
// its real digest in a manifest whose layers are real, and pulls it: a
// config that cannot be used fails with one of the package's sentinels.
//
//	go test ./pkg/image -run '^$' -fuzz FuzzConfig -fuzztime 10m
func FuzzConfig(f *testing.F) {
	tr := newRegistry(f)
	img := randomImage(f, 256, 1)
	push(f, tr.ref("fuzz/cfg:real"), img)
	m, err := img.Manifest()
	if err != nil {
		f.Fatal(err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"architecture":"arm64","os":"windows","rootfs":{"type":"layers","diff_ids":[]}}`))
	f.Add([]byte(`{"rootfs":{"diff_ids":["sha256:zz"]}}`))
	f.Add([]byte(`[]`))
	var manifest, config []byte
	tr.setTamper(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, "/manifests/fuzz"):
			w.Header().Set("Content-Type", string(m.MediaType))
			if r.Method != http.MethodHead {
				_, _ = w.Write(manifest)
			}
		case strings.HasSuffix(r.URL.Path, "/blobs/"+digestHex(config)):
			if r.Method != http.MethodHead {
				_, _ = w.Write(config)
			}
		default:
			return false
		}
		return true
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		fm := *m
		fm.Config.Digest, fm.Config.Size = v1.Hash{Algorithm: "sha256", Hex: hexOf(data)}, int64(len(data))
		b, err := json.Marshal(fm)
		if err != nil {
			t.Fatal(err)
		}
		manifest, config = b, data
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = openStore(t, t.TempDir()).Ensure(ctx, tr.ref("fuzz/cfg:fuzz"), image.PullOptions{Policy: spec.PullAlways, StallTimeout: 5 * time.Second})
		checkSentinel(ctx, t, err)
	})
}

func hexOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func digestHex(b []byte) string { return "sha256:" + hexOf(b) }
