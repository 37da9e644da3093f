package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSplitRemote(t *testing.T) {
	for _, tt := range []struct {
		arg, ref, path string
		remote         bool
	}{
		{"pid:4242:/etc/app.yaml", "pid:4242", "/etc/app.yaml", true},
		{"docker://web:/var/log", "docker://web", "/var/log", true},
		{"pid:1:/a:/b", "pid:1", "/a:/b", true},
		{"pod/web:/tmp/x", "pod/web", "/tmp/x", true},
		{"./pid:1:/x", "", "", false},
		{"/tmp/file", "", "", false},
		{"-", "", "", false},
		{"pid:1:relative", "", "", false},
		{"web:/var/log", "web", "/var/log", true},
		{"web:/a://b", "web", "/a://b", true},
	} {
		ref, p, ok := splitRemote(tt.arg)
		if ok != tt.remote || ref.Raw != tt.ref || p != tt.path {
			t.Errorf("splitRemote(%q) = %q %q %v, want %q %q %v", tt.arg, ref.Raw, p, ok, tt.ref, tt.path, tt.remote)
		}
	}
}

func TestCpUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"cp", "a"}, "needs a source and a destination"},
		{[]string{"cp", "a", "b"}, `neither "a" nor "b" is TARGET:PATH`},
		{[]string{"cp", "pid:1:/a", "docker://x:/b"}, "one side of cp is a local path"},
		{[]string{"cp", "pid:1:/a", ""}, "the local path is empty"},
		{[]string{"ns"}, "ns needs one target"},
		{[]string{"ns", "pid:1", "-o", "xml"}, `-o "xml": use table, json, yaml`},
		{[]string{"ns", "nope://x"}, "unknown scheme"},
		{[]string{"cp", "-c", "web", "pid:1:/a", "b"}, "-c names a container of a pod: pid:1 is not a pod"},
		{[]string{"cp", "-c", "web", "node/n1:/a", "b"}, "is not a pod or workload"},
		{[]string{"cp", "-c", "web", "pod/p/app:/a", "b"}, "pod/p/app names container app but -c says web"},
	} {
		var out, errb bytes.Buffer
		code := Execute(context.Background(), tt.args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
		if code != ExitUsage || !strings.Contains(errb.String(), tt.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("ephem %q: exit %d %q, want 64 and one line saying %q", tt.args, code, errb.String(), tt.want)
		}
	}
}

// TestLocalRoundTrip: a local tree written as tar and unpacked elsewhere
// keeps contents, modes, times and links.
func TestLocalRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tree")
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 890, time.UTC)
	for p, mode := range map[string]os.FileMode{"": 0o750, "sub": 0o700} {
		if err := os.MkdirAll(filepath.Join(src, p), 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(filepath.Join(src, p), mode)
	}
	if err := os.WriteFile(filepath.Join(src, "sub/f"), []byte("x"), 0o604); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/f", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sub/f", "sub", ""} {
		if err := os.Chtimes(filepath.Join(src, p), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chmod(filepath.Join(src, "sub"), 0o700)
	_ = os.Chmod(src, 0o750)
	var buf bytes.Buffer
	if err := writeTar(context.Background(), src, false, &buf); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := extractTar(context.Background(), bytes.NewReader(buf.Bytes()), filepath.Join(dst, "copy"), "tree", false); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	_ = filepath.Walk(dst, func(p string, fi os.FileInfo, _ error) error {
		rel, _ := filepath.Rel(dst, p)
		got[rel] = fi.Mode().String()
		if fi.Mode().IsRegular() || fi.Name() == "sub" {
			got[rel] += " " + fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
		return nil
	})
	want := map[string]string{
		".": got["."], "copy": "drwxr-x---", "copy/l": "Lrwxrwxrwx",
		"copy/sub": "drwx------ 2021-03-04T05:06:07.00000089Z", "copy/sub/f": "-rw----r-- 2021-03-04T05:06:07.00000089Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unpacked tree (-want +got):\n%s", diff)
	}
}

// TestExtractRefuses: a stream that would write through a link or outside
// the destination fails and leaves nothing.
func TestExtractRefuses(t *testing.T) {
	outside := t.TempDir()
	for name, hs := range map[string][]*tar.Header{
		"dotdot":       {{Name: "../x", Typeflag: tar.TypeReg}},
		"through link": {{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: outside}, {Name: "d/l/x", Typeflag: tar.TypeReg}},
		"two tops":     {{Name: "a", Typeflag: tar.TypeReg}, {Name: "b", Typeflag: tar.TypeReg}},
		"device":       {{Name: "null", Typeflag: tar.TypeChar}},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			_ = tw.WriteHeader(h)
		}
		_ = tw.Close()
		dst := t.TempDir()
		err := extractTar(context.Background(), &buf, filepath.Join(dst, "out"), "d", false)
		ents, _ := os.ReadDir(dst)
		outs, _ := os.ReadDir(outside)
		if err == nil || exitCodeFor(err) != ExitUsage || len(ents) != 0 || len(outs) != 0 {
			t.Errorf("%s: %v (exit %d), left %v, outside %v; want a usage error and nothing written", name, err, exitCodeFor(err), ents, outs)
		}
	}
}

func TestInode(t *testing.T) {
	if got := inode("net:[4026531840]"); got != "4026531840" {
		t.Errorf("inode = %q", got)
	}
}

// TestCpContainer: -c sets the container of a pod or workload target.
func TestCpContainer(t *testing.T) {
	for _, arg := range []string{"pod/p:/a", "deploy/web:/a", "pod/p/app:/a"} {
		o := &CpOptions{Container: "app"}
		o.target, _, _ = splitRemote(arg)
		if err := o.setContainer(); err != nil || o.target.Container != "app" {
			t.Errorf("-c app %s: container %q, %v", arg, o.target.Container, err)
		}
	}
}

// TestProgress: no line off a terminal; the wrappers count what passes.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	if p := startProgress(&buf); p != nil {
		t.Fatal("progress on a buffer, want none off a terminal")
	}
	p := &progress{w: &buf, start: time.Now().Add(-2 * time.Second), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	var sink bytes.Buffer
	if _, err := io.Copy(p.writer(&sink), p.reader(strings.NewReader(strings.Repeat("x", 3000)))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * progressEvery)
	p.finish()
	if n := p.n.Load(); n != 6000 {
		t.Errorf("counted %d bytes, want 6000 (read and written)", n)
	}
	if s := buf.String(); !strings.Contains(s, "\r6.0 kB copied") || !strings.HasSuffix(s, "\n") {
		t.Errorf("progress line %q", s)
	}
	var nilp *progress
	nilp.finish()
	if r := strings.NewReader(""); nilp.reader(r) != r {
		t.Error("a nil progress must pass the reader through")
	}
}
