package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzExtract feeds arbitrary tar streams to the layer unpacker: it never
// panics, never writes outside its directory, and a stream it refuses
// fails with corrupt image data (65), never an internal error. Run it for
// longer with:
//
//	go test ./pkg/image -run '^$' -fuzz FuzzExtract -fuzztime 10m
func FuzzExtract(f *testing.F) {
	for _, entries := range [][]tar.Header{
		{{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3}},
		{{Name: "a/.wh.b", Typeflag: tar.TypeReg}, {Name: "c/.wh..wh..opq", Typeflag: tar.TypeReg}},
		{{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, {Name: "link/x", Typeflag: tar.TypeReg, Size: 3}},
		{{Name: "../escape", Typeflag: tar.TypeReg, Size: 3}},
		{{Name: "hard", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}},
		{{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}},
		{{Name: ".wh.", Typeflag: tar.TypeReg}},
	} {
		f.Add(tarOf(f, entries))
	}
	f.Add([]byte("not a tar stream"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "root")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := extract(bytes.NewReader(data), dst, &unpackLimit{minFree: -1})
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("extract did not return within 10s")
		}
		if err != nil && !isDataError(err) && !strings.Contains(err.Error(), "writing layer contents") {
			t.Fatalf("error %v is neither corrupt data nor the unpacker's refusal", err)
		}
		left, err := os.ReadDir(parent)
		if err != nil || len(left) != 1 || left[0].Name() != "root" {
			t.Fatalf("the unpacker wrote beside its directory: %v %v", left, err)
		}
	})
}

// tarOf returns a tar stream of entries, regular files holding "abc".
func tarOf(f *testing.F, entries []tar.Header) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		if err := tw.WriteHeader(&h); err != nil {
			f.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte("abc")[:h.Size])
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}
