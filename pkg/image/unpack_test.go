package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// entry is one member of a tar built in memory.
type entry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}
func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}
func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

// buildTar returns the tar stream of entries.
func buildTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("writing header %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
}

// blobLayer is a v1.Layer over an in-memory blob whose digest and diffID
// the test chooses, so that they can be wrong.
type blobLayer struct {
	blob           []byte
	digest, diffID v1.Hash
}

func (l *blobLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) { return nil, errors.New("not used") }
func (l *blobLayer) Size() (int64, error)                 { return int64(len(l.blob)), nil }
func (l *blobLayer) MediaType() (types.MediaType, error) {
	return "application/vnd.oci.image.layer.v1.tar+gzip", nil
}

// unpackEnv is a watched temporary tree: a store, and an "outside"
// directory no layer may touch.
type unpackEnv struct {
	root, outside string
	s             *Store
	passwd        os.FileInfo // /etc/passwd before the test
}

func newUnpackEnv(t *testing.T) *unpackEnv {
	t.Helper()
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	if err := os.Mkdir(outside, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	passwd, err := os.Stat("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	return &unpackEnv{root: root, outside: outside, s: s, passwd: passwd}
}

// ensure runs the store's layer path on a gzip blob of tarBytes, with the
// given digest and diffID (zero: the correct ones).
func (e *unpackEnv) ensure(t *testing.T, blob []byte, digest, diffID v1.Hash) (string, error) {
	t.Helper()
	if digest == (v1.Hash{}) {
		digest = sha(blob)
	}
	l := &blobLayer{blob: blob, digest: digest, diffID: diffID}
	_, err := e.s.ensureLayer(context.Background(), &source{compressed: true}, l, diffID, nil)
	return e.s.layerFS(diffID.Hex), err
}

// assertClean checks that a failed unpack left no layer, no temporary
// entry, and nothing outside the store.
func (e *unpackEnv) assertClean(t *testing.T, diffID v1.Hash) {
	t.Helper()
	if _, err := os.Lstat(e.s.layerDir(diffID.Hex)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("layer directory exists after a failed unpack (err=%v)", err)
	}
	if ents, _ := os.ReadDir(e.s.tmpDir()); len(ents) != 0 {
		t.Errorf("tmp/ holds %d entries after a failed unpack", len(ents))
	}
	e.assertOutsideUntouched(t)
}

func (e *unpackEnv) assertOutsideUntouched(t *testing.T) {
	t.Helper()
	if fi, err := os.Stat("/etc/passwd"); err == nil && (fi.Size() != e.passwd.Size() || !fi.ModTime().Equal(e.passwd.ModTime())) {
		t.Errorf("/etc/passwd changed during the test")
	}
	if ents, _ := os.ReadDir(e.outside); len(ents) != 0 {
		t.Errorf("something was written outside the layer: %v", ents)
	}
	ents, _ := os.ReadDir(e.root)
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	if diff := cmp.Diff([]string{"outside", "store"}, names); diff != "" {
		t.Errorf("watched directory changed (-want +got):\n%s", diff)
	}
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func TestUnpackLayerSemantics(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: device nodes, ownership and trusted.* xattrs")
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	tests := []struct {
		name    string
		entries []entry
		check   func(t *testing.T, fsDir string)
	}{{
		name:    "whiteout becomes a 0/0 character device",
		entries: []entry{dir("a/"), file("a/.wh.b", "")},
		check: func(t *testing.T, fsDir string) {
			st := lstat(t, filepath.Join(fsDir, "a/b"))
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("a/b: mode %o rdev %d, want a character device 0/0", st.Mode, st.Rdev)
			}
			if _, err := os.Lstat(filepath.Join(fsDir, "a/.wh.b")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the .wh. file itself was written")
			}
		},
	}, {
		name:    "opaque directory gets trusted.overlay.opaque=y",
		entries: []entry{dir("d/"), file("d/.wh..wh..opq", ""), file("d/x", "x")},
		check: func(t *testing.T, fsDir string) {
			buf := make([]byte, 8)
			n, err := unix.Lgetxattr(filepath.Join(fsDir, "d"), "trusted.overlay.opaque", buf)
			if err != nil || string(buf[:n]) != "y" {
				t.Errorf("opaque xattr = %q, %v; want y", buf[:n], err)
			}
			if _, err := os.Lstat(filepath.Join(fsDir, "d/.wh..wh..opq")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the opaque marker file was written")
			}
			if b, _ := os.ReadFile(filepath.Join(fsDir, "d/x")); string(b) != "x" { //nolint:gosec // test paths
				t.Errorf("d/x = %q", b)
			}
		},
	}, {
		name:    "hardlink within the layer",
		entries: []entry{file("bin/f", "data"), hardlink("bin/g", "bin/f"), hardlink("h", "/bin/f")},
		check: func(t *testing.T, fsDir string) {
			f, g, h := lstat(t, filepath.Join(fsDir, "bin/f")), lstat(t, filepath.Join(fsDir, "bin/g")), lstat(t, filepath.Join(fsDir, "h"))
			if f.Ino != g.Ino || f.Ino != h.Ino || f.Nlink != 3 {
				t.Errorf("inodes %d %d %d nlink %d; want one inode with 3 links", f.Ino, g.Ino, h.Ino, f.Nlink)
			}
		},
	}, {
		name:    "symlinks stored verbatim and not followed",
		entries: []entry{symlink("rel", "../x/y"), symlink("abs", "/etc/passwd"), symlink("etc", "/etc")},
		check: func(t *testing.T, fsDir string) {
			for name, want := range map[string]string{"rel": "../x/y", "abs": "/etc/passwd", "etc": "/etc"} {
				if got, err := os.Readlink(filepath.Join(fsDir, name)); err != nil || got != want {
					t.Errorf("readlink %s = %q, %v; want %q", name, got, err, want)
				}
			}
		},
	}, {
		name: "xattrs preserved, overlay xattrs dropped",
		entries: []entry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "x", Mode: 0o644, PAXRecords: map[string]string{
			"SCHILY.xattr.user.note":                "hello",
			"SCHILY.xattr.security.capability":      "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			"SCHILY.xattr.trusted.overlay.redirect": "/etc",
		}}}},
		check: func(t *testing.T, fsDir string) {
			p := filepath.Join(fsDir, "x")
			buf := make([]byte, 64)
			if n, err := unix.Lgetxattr(p, "user.note", buf); err != nil || string(buf[:n]) != "hello" {
				t.Errorf("user.note = %q, %v", buf[:n], err)
			}
			if _, err := unix.Lgetxattr(p, "security.capability", buf); err != nil {
				t.Errorf("security.capability: %v", err)
			}
			if _, err := unix.Lgetxattr(p, "trusted.overlay.redirect", buf); !errors.Is(err, unix.ENODATA) {
				t.Errorf("trusted.overlay.redirect was set (err=%v)", err)
			}
		},
	}, {
		name: "device nodes and fifos",
		entries: []entry{
			{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
			{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Devmajor: 7, Devminor: 0}},
			{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600}},
		},
		check: func(t *testing.T, fsDir string) {
			if st := lstat(t, filepath.Join(fsDir, "dev/null")); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
				t.Errorf("dev/null: mode %o rdev %d", st.Mode, st.Rdev)
			}
			if st := lstat(t, filepath.Join(fsDir, "dev/loop0")); st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(7, 0) {
				t.Errorf("dev/loop0: mode %o rdev %d", st.Mode, st.Rdev)
			}
			if st := lstat(t, filepath.Join(fsDir, "fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
				t.Errorf("fifo: mode %o", st.Mode)
			}
		},
	}, {
		name: "modes, ownership and mtimes",
		entries: []entry{
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o1777, Uid: 7, Gid: 8, ModTime: mtime}},
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "d/suid", Mode: 0o4755, Uid: 1234, Gid: 5678, ModTime: mtime, Size: 2}, body: "hi"},
		},
		check: func(t *testing.T, fsDir string) {
			f := lstat(t, filepath.Join(fsDir, "d/suid"))
			if f.Mode&0o7777 != 0o4755 || f.Uid != 1234 || f.Gid != 5678 || f.Mtim.Sec != mtime.Unix() {
				t.Errorf("d/suid: mode %o uid %d gid %d mtime %d", f.Mode&0o7777, f.Uid, f.Gid, f.Mtim.Sec)
			}
			d := lstat(t, filepath.Join(fsDir, "d"))
			if d.Mode&0o7777 != 0o1777 || d.Uid != 7 || d.Gid != 8 || d.Mtim.Sec != mtime.Unix() {
				t.Errorf("d: mode %o uid %d gid %d mtime %d", d.Mode&0o7777, d.Uid, d.Gid, d.Mtim.Sec)
			}
		},
	}, {
		name:    "absolute and dotted names stay inside the layer",
		entries: []entry{file("/abs/file", "a"), file("./a/../b", "b")},
		check: func(t *testing.T, fsDir string) {
			for name, want := range map[string]string{"abs/file": "a", "b": "b"} {
				if got, err := os.ReadFile(filepath.Join(fsDir, name)); err != nil || string(got) != want { //nolint:gosec // test paths
					t.Errorf("%s = %q, %v; want %q", name, got, err, want)
				}
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newUnpackEnv(t)
			raw := buildTar(t, tc.entries...)
			fsDir, err := e.ensure(t, gzipBytes(t, raw), v1.Hash{}, sha(raw))
			if err != nil {
				t.Fatalf("ensureLayer: %v", err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(fsDir), ".done")); err != nil {
				t.Errorf("no .done marker: %v", err)
			}
			tc.check(t, fsDir)
			e.assertOutsideUntouched(t)
		})
	}
}

func TestUnpackLayerRejects(t *testing.T) {
	// The outside directory sits three levels above the layer's fs/:
	// <root>/store/tmp/layer-X/fs → <root>/outside.
	up := "../../../../outside"
	tests := []struct {
		name    string
		entries []entry
		want    string // in the error message: which entry
	}{
		{"dot-dot name", []entry{file("../x", "x")}, `"../x"`},
		{"dot-dot to the watched dir", []entry{file(up+"/x", "x")}, "escapes"},
		{"dot-dot after a directory", []entry{file("a/../../x", "x")}, `"a/../../x"`},
		{"file through an absolute symlink", []entry{symlink("evil", "/etc"), file("evil/passwd", "pwned")}, `"evil/passwd"`},
		{"file through a symlink to the watched dir", []entry{symlink("evil", "OUTSIDE"), file("evil/x", "pwned")}, `"evil/x"`},
		{"file through a relative symlink", []entry{symlink("up", "../../../.."), file("up/outside/x", "pwned")}, `"up/outside/x"`},
		{"directory through a symlink", []entry{symlink("evil", "OUTSIDE"), dir("evil/sub/")}, `"evil/sub/"`},
		{"hardlink climbing out", []entry{hardlink("h", "../../etc/passwd")}, "escapes"},
		{"hardlink to a file not in the layer", []entry{hardlink("h", "/etc/passwd")}, "not an earlier entry"},
		{"hardlink through a symlink", []entry{symlink("s", "/etc"), hardlink("h", "s/passwd")}, "symlink"},
		{"file under a regular file", []entry{file("f", "x"), file("f/g", "y")}, "not a directory"},
		{"unsupported entry type", []entry{{hdr: tar.Header{Typeflag: 'V', Name: "vol"}}}, "unsupported entry type"},
		{"whiteout of nothing", []entry{file(".wh.", "")}, "names no file"},
		{"whiteout of the directory", []entry{dir("d/"), file("d/.wh..", "")}, "names no file"},
		{"whiteout of the parent", []entry{file(".wh...", "")}, "names no file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newUnpackEnv(t)
			for i := range tc.entries {
				tc.entries[i].hdr.Linkname = strings.ReplaceAll(tc.entries[i].hdr.Linkname, "OUTSIDE", e.outside)
			}
			raw := buildTar(t, tc.entries...)
			_, err := e.ensure(t, gzipBytes(t, raw), v1.Hash{}, sha(raw))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ensureLayer error = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %s", err, tc.want)
			}
			e.assertClean(t, sha(raw))
		})
	}
}
