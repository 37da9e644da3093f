package image_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

// hostileBody is what a misbehaving registry or proxy might send with an
// error status: a page of HTML with terminal escapes.
const hostileBody = "<html>\n<head><title>Nope</title></head>\r\n<body>\x1b[31mgo away\x1b[0m\n</body>\n</html>\n"

// failing answers every GET or HEAD whose path ends in suffix with status
// and hostileBody, counting them in *n.
func failing(suffix string, status int, n *int) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, suffix) {
			return false
		}
		*n++
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = fmt.Fprint(w, hostileBody)
		}
		return true
	}
}

// oversized answers a GET of the manifest at path with more than the 4 MiB
// a manifest may have, announced in Content-Length or not (chunked).
func oversized(path string, announce bool) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != path {
			return false
		}
		body := `{"schemaVersion":2,"pad":"` + strings.Repeat("x", 4<<20) + `"}`
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if announce {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		}
		_, _ = fmt.Fprint(w, body)
		return true
	}
}

// TestEnsureRegistryHTTPErrors checks that every way a registry can fail
// over HTTP maps to one sentinel, on one printable line: server errors
// (once go-containerregistry has retried them) to ErrUnreachable, 401 and
// 403 to ErrAuth, 404 to ErrNotFound, and an oversized manifest to
// ErrCorrupt, whether the manifest, the config or a layer fails.
func TestEnsureRegistryHTTPErrors(t *testing.T) {
	img := randomImage(t, 1024, 2)
	layers, _ := img.Layers()
	layer, _ := layers[1].Digest()
	cfg, _ := img.ConfigName()
	for _, tc := range []struct {
		name   string
		suffix string // of the failing request's path
		status int
		want   error
		tries  int // requests that failed, at the least
	}{
		{"manifest 500", "/manifests/1", http.StatusInternalServerError, image.ErrUnreachable, 2},
		{"manifest 503", "/manifests/1", http.StatusServiceUnavailable, image.ErrUnreachable, 2},
		{"manifest 429", "/manifests/1", http.StatusTooManyRequests, image.ErrUnreachable, 2},
		{"config 500", "/blobs/" + cfg.String(), http.StatusInternalServerError, image.ErrUnreachable, 2},
		{"layer 502", "/blobs/" + layer.String(), http.StatusBadGateway, image.ErrUnreachable, 2},
		{"manifest 401", "/manifests/1", http.StatusUnauthorized, image.ErrAuth, 1},
		{"manifest 403", "/manifests/1", http.StatusForbidden, image.ErrAuth, 1},
		{"layer 403", "/blobs/" + layer.String(), http.StatusForbidden, image.ErrAuth, 1},
		{"manifest 404", "/manifests/1", http.StatusNotFound, image.ErrNotFound, 1},
		{"config 404", "/blobs/" + cfg.String(), http.StatusNotFound, image.ErrNotFound, 1},
		{"layer 404", "/blobs/" + layer.String(), http.StatusNotFound, image.ErrNotFound, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t)
			push(t, reg.ref("flaky:1"), img)
			var n int
			reg.setTamper(failing(tc.suffix, tc.status, &n))
			_, err := openStore(t, t.TempDir()).Ensure(context.Background(), reg.ref("flaky:1"), image.PullOptions{Policy: spec.PullAlways})
			assertOnly(t, err, tc.want)
			assertOneLine(t, err)
			if n < tc.tries {
				t.Errorf("%d failing requests, want %d at the least", n, tc.tries)
			}
		})
	}
}

// TestEnsureOversizedManifest checks that a manifest over 4 MiB is refused
// as corrupt, however it is sent, without reading it all.
func TestEnsureOversizedManifest(t *testing.T) {
	for _, announce := range []bool{true, false} {
		t.Run(fmt.Sprintf("Content-Length %v", announce), func(t *testing.T) {
			reg := newRegistry(t)
			reg.setTamper(oversized("/v2/huge/manifests/1", announce))
			_, err := openStore(t, t.TempDir()).Ensure(context.Background(), reg.ref("huge:1"), image.PullOptions{})
			assertOnly(t, err, image.ErrCorrupt)
			assertOneLine(t, err)
			assertMentions(t, err, "manifest", "4 MiB")
		})
	}
}

// assertOneLine fails if err's text spans lines or holds other control
// characters, or goes on for more than a few hundred characters.
func assertOneLine(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if i := strings.IndexFunc(msg, unicode.IsControl); i >= 0 {
		t.Errorf("control character %q in the error: %q", msg[i], msg)
	}
	if len(msg) > 600 {
		t.Errorf("error of %d bytes: %s", len(msg), msg)
	}
}
