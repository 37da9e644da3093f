package cli

import (
	"archive/tar"
	"bytes"
	"context"
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
		{[]string{"ns", "pid:1", "-o", "yaml"}, `-o "yaml": use table or json`},
		{[]string{"ns", "nope://x"}, "unknown scheme"},
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
