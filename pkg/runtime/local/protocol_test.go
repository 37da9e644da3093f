package local

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text: ok":           "plain text: ok",
		"\x1b]0;pwned\x07title":    "?]0;pwned?title",
		"line\nbreak\rreturn\ttab": "line?break?return?tab",
		"c1 \u009b31m":             "c1 ?31m",
		"bad utf8 \xff":            "bad utf8 ?",
		"unicode stays: é, ü, 日本":  "unicode stays: é, ü, 日本",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
	if got := printable(strings.Repeat("a", 10*maxText)); len(got) != maxText+3 {
		t.Errorf("a long text printed %d bytes, want %d", len(got), maxText+3)
	}
}

// TestConfigLargerThanADatagram: a config of megabytes (a long entrypoint,
// large environment values, all of which execve takes) reaches init whole.
func TestConfigLargerThanADatagram(t *testing.T) {
	host, child, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	defer child.Close()
	big := strings.Repeat("x", 100_000)
	want := &initConfig{Argv: []string{"sh", "-c", strings.Repeat("echo entrypoint; ", 40_000)}, Env: []string{"A=" + big, "B=" + big, "C=" + big}}
	errc := make(chan error, 1)
	go func() { errc <- (&conn{f: host}).sendConfig(want, -1) }()
	m, fds, err := (&conn{f: child}).recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("sendConfig: %v", err)
	}
	if m.T != msgConfig || len(fds) != 1 {
		t.Fatalf("got %q with %d descriptors, want the config with one", m.T, len(fds))
	}
	defer closeAll(fds)
	enc, err := want.encode()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fds[0], &st); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, st.Size)
	if n, err := unix.Pread(fds[0], got, 0); err != nil || n != len(enc) || !bytes.Equal(got, enc) {
		t.Errorf("config arrived changed: %d of %d bytes, %v", n, len(enc), err)
	}
	// Sealed: nobody, init included, can change it.
	if _, err := unix.Pwrite(fds[0], []byte("x"), 0); err == nil {
		t.Error("the config's memfd is writable")
	}
}
