package image

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

func TestUnpackLayerCorruptData(t *testing.T) {
	raw := buildTar(t, dir("d/"), file("d/big", strings.Repeat("0123456789", 10000)), file("d/small", "x"))
	gz := gzipBytes(t, raw)
	other := sha([]byte("other"))
	tests := []struct {
		name           string
		blob           []byte
		digest, diffID v1.Hash
		want           string
	}{
		{"truncated gzip", gz[:len(gz)/2], sha(gz[:len(gz)/2]), sha(raw), "unexpected EOF"},
		{"truncated tar", gzipBytes(t, raw[:len(raw)/2]), v1.Hash{}, sha(raw), "unexpected EOF"},
		{"wrong diffID", gz, v1.Hash{}, other, "diffID"},
		{"wrong blob digest", gz, other, sha(raw), "blob digest"},
		{"gzip trailing garbage", append(append([]byte{}, gz...), "garbage!"...), v1.Hash{}, sha(raw), "reading layer"},
		{"not a tar", gzipBytes(t, bytes.Repeat([]byte("not a tar "), 100)), v1.Hash{}, sha(raw), "tar"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newUnpackEnv(t)
			_, err := e.ensure(t, tc.blob, tc.digest, tc.diffID)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ensureLayer error = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			e.assertClean(t, tc.diffID)
		})
	}
}

func TestUnpackLayerUncompressedAndZstd(t *testing.T) {
	raw := buildTar(t, file("hello", "world"))
	e := newUnpackEnv(t)
	fsDir, err := e.ensure(t, raw, v1.Hash{}, sha(raw))
	if err != nil {
		t.Fatalf("plain tar: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(fsDir, "hello")); string(b) != "world" { //nolint:gosec // test paths
		t.Errorf("hello = %q", b)
	}

	raw = buildTar(t, file("zstd", "compressed"))
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	fsDir, err = e.ensure(t, zw.EncodeAll(raw, nil), v1.Hash{}, sha(raw))
	if err != nil {
		t.Fatalf("zstd tar: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(fsDir, "zstd")); string(b) != "compressed" { //nolint:gosec // test path
		t.Errorf("zstd = %q", b)
	}
}

// TestUnpackLayerReplacesSymlink checks that an entry replacing a symlink
// of the same layer replaces the link instead of writing through it.
func TestUnpackLayerReplacesSymlink(t *testing.T) {
	e := newUnpackEnv(t)
	target := filepath.Join(e.outside, "target")
	raw := buildTar(t, symlink("f", target), file("f", "inside"), symlink("d", e.outside), dir("d/"))
	fsDir, err := e.ensure(t, gzipBytes(t, raw), v1.Hash{}, sha(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(fsDir, "f")); err != nil || string(b) != "inside" { //nolint:gosec // test path
		t.Errorf("f = %q, %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(fsDir, "d")); err != nil || !fi.IsDir() {
		t.Errorf("d is not a directory: %v, %v", fi, err)
	}
	e.assertOutsideUntouched(t)
}
