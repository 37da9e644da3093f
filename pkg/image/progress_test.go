package image

import (
	"bytes"
	"strings"
	"testing"
)

func TestBarString(t *testing.T) {
	d := "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	tests := []struct {
		name       string
		total, cur int64
		done       bool
		want       string
	}{
		{"start", 5_000_000, 0, false, "sha256:abcdef012345 [>                             ] 0.0/5.0 MB"},
		{"middle", 5_000_000, 3_100_000, false, "sha256:abcdef012345 [==================>           ] 3.1/5.0 MB"},
		{"done", 5_000_000, 5_000_000, true, "sha256:abcdef012345 [==============================] 5.0/5.0 MB"},
		{"unknown size", -1, 1_200_000, true, "sha256:abcdef012345 1.2 MB done"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &bar{id: shortDigest(d), total: tc.total, cur: tc.cur, done: tc.done}
			if got := b.String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, false)
	p.start("index.docker.io/library/busybox:latest")
	b := p.layer("sha256:abcdef0123456789", 1_200_000)
	b.add(600_000)
	b.add(600_000)
	b.finish(nil)
	want := "pulling index.docker.io/library/busybox:latest\n" +
		"layer sha256:abcdef012345 1.2 MB pulling\n" +
		"layer sha256:abcdef012345 1.2 MB done\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestProgressTTY(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true)
	a := p.layer("sha256:aaaaaaaaaaaaaaaa", 1000)
	b := p.layer("sha256:bbbbbbbbbbbbbbbb", 2000)
	a.add(1000)
	a.finish(nil)
	b.add(2000)
	b.finish(nil)
	out := buf.String()
	// The last redraw moves up over both bars and rewrites them complete.
	last := out[strings.LastIndex(out, "\x1b[2A"):]
	want := "\x1b[2A\r\x1b[2Ksha256:aaaaaaaaaaaa [==============================] 1.0/1.0 kB\n" +
		"\r\x1b[2Ksha256:bbbbbbbbbbbb [==============================] 2.0/2.0 kB\n"
	if last != want {
		t.Errorf("last redraw %q\nwant %q", last, want)
	}
}

func TestProgressNil(t *testing.T) {
	p := newProgress(nil, true)
	if p != nil {
		t.Fatal("a nil writer must yield a nil progress")
	}
	// All methods are no-ops on nil.
	p.start("x")
	b := p.layer("sha256:x", 1)
	b.add(1)
	b.finish(nil)
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{-1: "? B", 0: "0 B", 999: "999 B", 1500: "1.5 kB", 1_200_000: "1.2 MB", 3e9: "3.0 GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512M": 512 << 20, "2G": 2 << 30, "1.5g": 3 << 29,
		"64KiB": 64 << 10, "1T": 1 << 40, "10B": 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "12Q", "-1M", "1e30", "M"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded, want an error", in)
		}
	}
}
