package image_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	defer image.SetRetryBackoff(time.Millisecond)()
	os.Exit(m.Run())
}

// testRegistry is an in-process registry (go-containerregistry's
// pkg/registry) behind a wrapper that counts requests and can tamper with
// them.
type testRegistry struct {
	srv  *httptest.Server
	host string

	mu       sync.Mutex
	requests int            // all requests
	blobGets map[string]int // GET /v2/.../blobs/<digest> per digest
	// tamper, if set, may serve a request itself; it returns false to let
	// the registry answer.
	tamper func(w http.ResponseWriter, r *http.Request) bool
}

func newRegistry(t testing.TB) *testRegistry {
	t.Helper()
	tr := &testRegistry{blobGets: map[string]int{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.requests++
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			tr.blobGets[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
		}
		tamper := tr.tamper
		tr.mu.Unlock()
		if tamper != nil && tamper(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

// ref returns host/repo:tag on this registry.
func (tr *testRegistry) ref(repoTag string) string { return tr.host + "/" + repoTag }

// counts returns the number of requests and blob GETs so far.
func (tr *testRegistry) counts() (requests, blobGets int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, n := range tr.blobGets {
		blobGets += n
	}
	return tr.requests, blobGets
}

// layerGets returns how many times each layer of img was downloaded.
func (tr *testRegistry) layerGets(t testing.TB, img v1.Image) []int {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []int
	for _, l := range layers {
		d, _ := l.Digest()
		out = append(out, tr.blobGets[d.String()])
	}
	return out
}

func (tr *testRegistry) setTamper(f func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.tamper = f
}

// push writes img to ref.
func push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

// randomImage returns an image of layers random layers of size bytes each,
// with a config that names linux/amd64.
func randomImage(t testing.TB, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func openStore(t testing.TB, dir string) *image.Store {
	t.Helper()
	s, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ensure(t testing.TB, s *image.Store, ref string, policy spec.PullPolicy) *image.Image {
	t.Helper()
	img, err := s.Ensure(context.Background(), ref, image.PullOptions{Policy: policy})
	if err != nil {
		t.Fatalf("Ensure(%s, %s): %v", ref, policy, err)
	}
	return img
}

// layerDirs lists the layer directories of the store at dir.
func layerDirs(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "layers", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// tmpEntries lists tmp/ of the store at dir.
func tmpEntries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
