package record_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/pkg/record"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/google/go-cmp/cmp"
)

func TestRecording(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.cast")
	r, err := record.Create(path, record.Header{Width: 80, Height: 24, Env: map[string]string{"TERM": "xterm", "SHELL": "/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := record.Streams(session.Streams{In: strings.NewReader("ls\r"), Out: &out}, r, true)
	if _, err := s.In.Read(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	euro := []byte("€ x\r\n") // split inside the euro sign
	for _, p := range [][]byte{[]byte("$ "), euro[:1], euro[1:]} {
		if _, err := s.Out.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	s.Out.(session.SizeObserver).ObserveSize(24, 80) // the same size: no event
	s.Out.(session.SizeObserver).ObserveSize(40, 120)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "$ € x\r\n" {
		t.Errorf("the stream got %q", out.String())
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("recording mode %v, want 0600 (%v)", st.Mode().Perm(), err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, evs, err := record.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 2 || h.Width != 80 || h.Height != 24 || h.Timestamp == 0 || h.Env["TERM"] != "xterm" {
		t.Errorf("header %+v", h)
	}
	var got [][2]string
	for _, e := range evs {
		got = append(got, [2]string{e.Code, e.Data})
	}
	want := [][2]string{{"i", "ls\r"}, {"o", "$ "}, {"o", "€ x\r\n"}, {"r", "120x40"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

func TestNoInputUnlessAsked(t *testing.T) {
	var buf bytes.Buffer
	r, err := record.New(&buf, record.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	in := strings.NewReader("secret\r")
	s := record.Streams(session.Streams{In: in, Out: &bytes.Buffer{}}, r, false)
	if s.In != in {
		t.Error("input is wrapped without --record-input")
	}
	_ = r.Close()
	if strings.Contains(buf.String(), "secret") {
		t.Errorf("input recorded: %s", buf.String())
	}
}

func TestFileStreamsKeepTheirDescriptor(t *testing.T) {
	r, err := record.New(&bytes.Buffer{}, record.Header{Width: 1, Height: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := record.Streams(session.Streams{In: os.Stdin, Out: os.Stdout}, r, true)
	for _, v := range []any{s.In, s.Out} {
		if f, ok := v.(session.Filer); !ok || f.Fd() == ^uintptr(0) {
			t.Errorf("%T lost its descriptor", v)
		}
	}
}

func TestParseIsStrict(t *testing.T) {
	hdr := `{"version":2,"width":80,"height":24}` + "\n"
	for name, in := range map[string]string{
		"empty":         "",
		"version 1":     `{"version":1,"width":80,"height":24}` + "\n",
		"no size":       `{"version":2}` + "\n",
		"two elements":  hdr + `[0.1, "o"]` + "\n",
		"unknown code":  hdr + `[0.1, "x", "a"]` + "\n",
		"time backward": hdr + `[0.2, "o", "a"]` + "\n" + `[0.1, "o", "b"]` + "\n",
		"bad resize":    hdr + `[0.1, "r", "80,24"]` + "\n",
		"not json":      hdr + `[0.1, "o", "a"` + "\n",
		"string time":   hdr + `["0.1", "o", "a"]` + "\n",
	} {
		if _, _, err := record.Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
