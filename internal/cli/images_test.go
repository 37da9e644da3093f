package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ephem-dev/ephem/pkg/image"
)

// cachedImages fills a cache with two images from an OCI layout and returns
// the cache directory and the images' references and digests.
func cachedImages(t *testing.T) (cache string, refs []string, digests []v1.Hash) {
	t.Helper()
	src := t.TempDir()
	p, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	cache = t.TempDir()
	s, err := image.Open(cache)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	for _, tag := range []string{"a", "b"} {
		img, err := random.Image(2000, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
		got, err := s.Ensure(context.Background(), "oci:"+src+":"+tag, image.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		refs, digests = append(refs, got.Ref), append(digests, got.Digest)
	}
	return cache, refs, digests
}

// run executes ephem with args and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func TestImagesLs(t *testing.T) {
	cache, refs, digests := cachedImages(t)
	code, out, errOut := run(t, "images", "ls", "--cache-dir", cache)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	table := out
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows, got:\n%s", out)
	}
	if !regexp.MustCompile(`^REFERENCE\s+DIGEST\s+SIZE\s+LAST USED$`).MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	for i, l := range lines[1:] {
		want := `^` + regexp.QuoteMeta(refs[i]) + `\s+` + digests[i].Hex[:12] + `\s+4\.\d kB\s+just now$`
		if !regexp.MustCompile(want).MatchString(l) {
			t.Errorf("row %d = %q, want match %s", i, l, want)
		}
	}

	code, out, _ = run(t, "images", "ls", "-q", "--cache-dir", cache)
	if diff := cmp.Diff(digests[0].String()+"\n"+digests[1].String()+"\n", out); code != 0 || diff != "" {
		t.Errorf("ls -q: exit %d (-want +got):\n%s", code, diff)
	}

	// "images" alone lists too.
	if code, bare, _ := run(t, "images", "--cache-dir", cache); code != 0 || bare != table {
		t.Errorf("images alone: exit %d, %q, want %q", code, bare, table)
	}
	if code, bare, _ := run(t, "images", "-q", "--cache-dir", cache); code != 0 || bare != out {
		t.Errorf("images -q: exit %d, %q, want %q", code, bare, out)
	}
	if code, _, _ := run(t, "images", "bogus", "--cache-dir", cache); code != ExitUsage {
		t.Errorf("images bogus: exit %d, want %d", code, ExitUsage)
	}

	code, out, _ = run(t, "images", "ls", "--cache-dir", t.TempDir())
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("empty cache: exit %d\n%s", code, out)
	}
}

func TestImagesRm(t *testing.T) {
	cache, refs, digests := cachedImages(t)
	if code, _, errOut := run(t, "images", "rm", "--cache-dir", cache, refs[0]); code != 0 {
		t.Fatalf("rm: exit %d: %s", code, errOut)
	}
	_, out, _ := run(t, "images", "ls", "-q", "--cache-dir", cache)
	if out != digests[1].String()+"\n" {
		t.Errorf("after rm, ls -q = %q", out)
	}
	// By the short digest ls shows.
	if code, _, errOut := run(t, "images", "rm", "--cache-dir", cache, digests[1].Hex[:12]); code != 0 {
		t.Fatalf("rm by digest: exit %d: %s", code, errOut)
	}
	code, _, errOut := run(t, "images", "rm", "--cache-dir", cache, refs[0])
	if code != ExitImageNotFound || !strings.Contains(errOut, "not cached") {
		t.Errorf("rm of an uncached ref: exit %d, stderr %q; want %d", code, errOut, ExitImageNotFound)
	}
	if code, _, _ := run(t, "images", "rm", "--cache-dir", cache); code != ExitUsage {
		t.Errorf("rm without arguments: exit %d, want %d", code, ExitUsage)
	}
}

func TestImagesPrune(t *testing.T) {
	cache, refs, _ := cachedImages(t)
	layers := func() int {
		ents, _ := os.ReadDir(filepath.Join(cache, "layers", "sha256"))
		n := 0
		for _, e := range ents {
			if e.IsDir() {
				n++
			}
		}
		return n
	}
	if code, out, _ := run(t, "images", "prune", "--cache-dir", cache); code != 0 || out != "freed 0 B\n" || layers() != 4 {
		t.Errorf("prune with everything in use: exit %d, %q, %d layers", code, out, layers())
	}
	run(t, "images", "rm", "--cache-dir", cache, refs[0])
	code, out, _ := run(t, "images", "prune", "--cache-dir", cache)
	if code != 0 || !regexp.MustCompile(`^freed \d+\.\d kB\n$`).MatchString(out) || layers() != 2 {
		t.Errorf("prune: exit %d, %q, %d layers; want 2 left", code, out, layers())
	}
	if code, _, _ := run(t, "images", "prune", "--all", "--cache-dir", cache); code != 0 || layers() != 0 {
		t.Errorf("prune --all: exit %d, %d layers left", code, layers())
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		10 * time.Second: "just now", time.Minute: "1 minute ago", 5 * time.Minute: "5 minutes ago",
		3 * time.Hour: "3 hours ago", 72 * time.Hour: "3 days ago",
	} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
	if got := ago(now, time.Time{}); got != "never" {
		t.Errorf("zero time: %q", got)
	}
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 4200: "4.2 kB", 12_345_678: "12.3 MB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestQuietMeansOneThing: -q is debug's "no pull progress" and images ls's
// "digests only"; neither is a global flag that the other takes over.
func TestQuietMeansOneThing(t *testing.T) {
	cache, _, digests := cachedImages(t)
	code, out, _ := run(t, "images", "ls", "-q", "--cache-dir", cache)
	if code != 0 || !strings.Contains(out, digests[0].String()) || strings.Contains(out, "REFERENCE") {
		t.Errorf("images ls -q: exit %d %q, want the digests", code, out)
	}
	if code, _, errOut := run(t, "-q", "images", "ls", "--cache-dir", cache); code != ExitUsage || !strings.Contains(errOut, "-q") {
		t.Errorf("ephem -q images ls: exit %d %q, want a usage error: -q is no global flag", code, errOut)
	}
}
