package kube

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/google/go-cmp/cmp"
)

// entry is one tar entry, as tests write and read them.
type entry struct {
	name, link string
	kind       byte
	uid        int
	body       string
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.kind, Uid: e.uid, Uname: "someone", Mode: 0o644,
			Size: int64(len(e.body)), ModTime: time.Unix(1e9, 5e8)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func entriesOf(t *testing.T, r io.Reader) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uname != "" || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: uname %q, mtime %v: want no names, whole seconds", h.Name, h.Uname, h.ModTime)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, entry{name: h.Name, link: h.Linkname, kind: h.Typeflag, uid: h.Uid, body: string(b)})
	}
}

func TestRewriteIn(t *testing.T) {
	tree := []entry{
		{name: "src/", kind: tar.TypeDir, uid: 7},
		{name: "src/a", kind: tar.TypeReg, uid: 7, body: "alpha"},
		{name: "src/l", kind: tar.TypeSymlink, link: "/etc/passwd", uid: 7},
		{name: "src/h", kind: tar.TypeLink, link: "src/a", uid: 7},
	}
	tests := []struct {
		name     string
		in       []entry
		rename   string
		keep     bool
		want     []entry
		refusing string
	}{
		{"into a directory, owners to root", tree, "", false, []entry{
			{name: "src/", kind: tar.TypeDir}, {name: "src/a", kind: tar.TypeReg, body: "alpha"},
			{name: "src/l", kind: tar.TypeSymlink, link: "/etc/passwd"}, {name: "src/h", kind: tar.TypeLink, link: "src/a"},
		}, ""},
		{"renamed, owners kept", tree, "dst", true, []entry{
			{name: "dst/", kind: tar.TypeDir, uid: 7}, {name: "dst/a", kind: tar.TypeReg, uid: 7, body: "alpha"},
			{name: "dst/l", kind: tar.TypeSymlink, link: "/etc/passwd", uid: 7}, {name: "dst/h", kind: tar.TypeLink, link: "dst/a", uid: 7},
		}, ""},
		{"dot-dot", []entry{{name: "../etc/passwd", kind: tar.TypeReg}}, "", false, nil, "leaves the destination"},
		{"absolute", []entry{{name: "/etc/passwd", kind: tar.TypeReg}}, "", false, nil, "leaves the destination"},
		{"hard link out", []entry{{name: "x", kind: tar.TypeLink, link: "../../etc/shadow"}}, "", false, nil, "leaves the destination"},
		{"through its own link", []entry{{name: "l", kind: tar.TypeSymlink, link: "/etc"}, {name: "l/passwd", kind: tar.TypeReg}},
			"", false, nil, "through its own link"},
		{"two tops renamed", []entry{{name: "a", kind: tar.TypeReg}, {name: "b", kind: tar.TypeReg}}, "x", false, nil, "more than one top entry"},
		{"a device", []entry{{name: "null", kind: tar.TypeChar}}, "", false, nil, "device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := rewriteIn(tarOf(t, tt.in...), &out, tt.rename, tt.keep)
			if tt.refusing != "" {
				if !errors.Is(err, runtime.ErrUsage) || !strings.Contains(err.Error(), tt.refusing) {
					t.Fatalf("error %v, want a usage error saying %q", err, tt.refusing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, entriesOf(t, &out), cmp.AllowUnexported(entry{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRewriteOut(t *testing.T) {
	in := tarOf(t,
		entry{name: "./v2/", kind: tar.TypeDir, uid: 3},
		entry{name: "./v2/f", kind: tar.TypeReg, uid: 3, body: "x"},
		entry{name: "./v2/g", kind: tar.TypeLink, link: "./v2/f", uid: 3},
	)
	var out bytes.Buffer
	if err := rewriteOut(in, &out, "current"); err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{name: "current/", kind: tar.TypeDir, uid: 3}, {name: "current/f", kind: tar.TypeReg, uid: 3, body: "x"},
		{name: "current/g", kind: tar.TypeLink, link: "current/f", uid: 3},
	}
	got := entriesOf(t, &out)
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(entry{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := rewriteOut(strings.NewReader("not a tar stream at all, but long enough to fill a block? no"), io.Discard, "x"); err == nil {
		t.Error("a broken stream: no error")
	}
}
