package local

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// testRoot returns a rootFS on a fresh directory standing for a target's
// root, with this process's IDs as the target's root, and a directory
// outside it standing for the host's files.
func testRoot(t *testing.T) (r *rootFS, root, host string) {
	t.Helper()
	base := t.TempDir()
	root, host = filepath.Join(base, "root"), filepath.Join(base, "host")
	for _, d := range []string{root + "/etc/app", root + "/data", host} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r = &rootFS{fd: fd, ref: target.Ref{Raw: "pid:42"},
		uid: []idRange{{0, uint32(os.Getuid()), 1}}, gid: []idRange{{0, uint32(os.Getgid()), 1}}}
	t.Cleanup(r.close)
	write(t, filepath.Join(host, "shadow"), "SECRET")
	write(t, filepath.Join(root, "etc/app/a.conf"), "hello")
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "etc/app/a.conf"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	// Planted links that would reach the host's file outside the root.
	for link, to := range map[string]string{
		"evil-abs":      filepath.Join(host, "shadow"),
		"evil-dir":      host,
		"data/evil-rel": "../../../../../../../../../.." + host,
		"etc/app/link":  "a.conf",
	} {
		if err := os.Symlink(to, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return r, root, host
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

// entries reads a tar stream into name → content (links: "-> target").
func entries(t *testing.T, b []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if h.Typeflag == tar.TypeSymlink {
			data = []byte("-> " + h.Linkname)
		}
		m[h.Name] = string(data)
	}
}

func TestCopyFromConfined(t *testing.T) {
	r, _, _ := testRoot(t)
	ctx := context.Background()
	var buf bytes.Buffer
	if err := r.copyFrom(ctx, "/etc/app", runtime.CopyOptions{}, &buf); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app/": "", "app/a.conf": "hello", "app/link": "-> a.conf"}
	if diff := cmp.Diff(want, entries(t, buf.Bytes())); diff != "" {
		t.Errorf("copying /etc/app (-want +got):\n%s", diff)
	}
	// Through planted links and "..": the host's file is never read.
	for _, tt := range []struct {
		path   string
		follow bool
	}{
		{"/evil-abs", true}, {"/evil-dir/shadow", false}, {"/data/evil-rel/shadow", false},
		{"/../../../../" + "evil-dir/shadow", false},
	} {
		buf.Reset()
		err := r.copyFrom(ctx, tt.path, runtime.CopyOptions{FollowLink: tt.follow}, &buf)
		if !errors.Is(err, target.ErrNotFound) || bytes.Contains(buf.Bytes(), []byte("SECRET")) {
			t.Errorf("copying %s (follow %v): %v, %d bytes; want not found and nothing read", tt.path, tt.follow, err, buf.Len())
		}
	}
	// The link itself, not followed.
	buf.Reset()
	if err := r.copyFrom(ctx, "/evil-abs", runtime.CopyOptions{}, &buf); err != nil || bytes.Contains(buf.Bytes(), []byte("SECRET")) {
		t.Errorf("copying the link /evil-abs: %v", err)
	}
}

// tarOf builds a tar stream of entries in order.
func tarOf(t *testing.T, hs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Linkname))
		}
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			h.Linkname = ""
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// file returns a regular file entry; its content rides in Linkname.
func file(name, content string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Linkname: content, ModTime: time.Unix(1e9, 0)}
}

func TestCopyToConfined(t *testing.T) {
	r, root, host := testRoot(t)
	ctx := context.Background()
	mtime := time.Unix(1e9, 5)
	stream := tarOf(t, &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750, ModTime: mtime, Format: tar.FormatPAX},
		&tar.Header{Name: "d/x", Typeflag: tar.TypeReg, Mode: 0o604, Linkname: "data", ModTime: mtime, Format: tar.FormatPAX},
		&tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "x", ModTime: mtime})
	if err := r.copyTo(ctx, "/data", runtime.CopyOptions{}, bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "data/d/x")); err != nil || string(b) != "data" {
		t.Errorf("data/d/x: %q %v", b, err)
	}
	for p, mode := range map[string]os.FileMode{"data/d": os.ModeDir | 0o750, "data/d/x": 0o604} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if fi.Mode() != mode || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: mode %v mtime %v, want %v %v", p, fi.Mode(), fi.ModTime(), mode, mtime)
		}
	}
	// Renamed as the destination's name when that does not exist.
	if err := r.copyTo(ctx, "/data/new", runtime.CopyOptions{}, bytes.NewReader(tarOf(t, file("x", "N")))); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "data/new")); string(b) != "N" {
		t.Errorf("data/new = %q", b)
	}
	// Attacks: none writes outside the root.
	for _, tt := range []struct {
		dest   string
		stream []byte
	}{
		{"/evil-dir", tarOf(t, file("shadow", "PWNED"))},
		{"/evil-dir/shadow", tarOf(t, file("x", "PWNED"))},
		{"/data/evil-rel/shadow", tarOf(t, file("x", "PWNED"))},
		{"/../../evil-dir/shadow", tarOf(t, file("x", "PWNED"))},
		{"/data", tarOf(t, &tar.Header{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: host}, file("esc/shadow", "PWNED"))},
		{"/data", tarOf(t, file("../../host/shadow", "PWNED"))},
		{"/evil-abs", tarOf(t, file("x", "PWNED"))}, // replaces the link itself
	} {
		_ = r.copyTo(ctx, tt.dest, runtime.CopyOptions{}, bytes.NewReader(tt.stream))
		if b, _ := os.ReadFile(filepath.Join(host, "shadow")); string(b) != "SECRET" {
			t.Fatalf("copying to %s changed the host's file: %q", tt.dest, b)
		}
		if ents, _ := os.ReadDir(host); len(ents) != 1 {
			t.Fatalf("copying to %s wrote into the host's directory: %v", tt.dest, ents)
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, "evil-abs")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("/evil-abs is not the copied file: %v %v", fi, err)
	}
	// No temporary name is left behind by a failed write.
	var left []string
	_ = filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		if filepath.Base(p)[0] == '.' {
			left = append(left, p)
		}
		return nil
	})
	sort.Strings(left)
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestIDMaps(t *testing.T) {
	m := []idRange{{0, 100000, 65536}}
	if got := toInside(m, 100005); got != 5 {
		t.Errorf("toInside(100005) = %d, want 5", got)
	}
	if got := toInside(m, 0); got != overflowID {
		t.Errorf("toInside(0) = %d, want the overflow ID", got)
	}
	if got, ok := toHost(m, 7); !ok || got != 100007 {
		t.Errorf("toHost(7) = %d %v", got, ok)
	}
	if _, ok := toHost(m, 70000); ok {
		t.Errorf("toHost(70000) mapped an ID outside the map")
	}
}
