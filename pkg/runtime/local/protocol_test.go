package local

import (
	"strings"
	"testing"
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
	go func() { errc <- (&conn{f: host}).sendConfig(want) }()
	m, fds, err := (&conn{f: child}).recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("sendConfig: %v", err)
	}
	got, err := readConfig(m, fds)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Argv[2]) != len(want.Argv[2]) || len(got.Env) != 3 || got.Env[2] != want.Env[2] {
		t.Errorf("config arrived changed: argv %d bytes, env %d values", len(got.Argv[2]), len(got.Env))
	}
	if _, err := readConfig(message{T: msgConfig}, nil); err == nil {
		t.Error("a config message without its descriptor was accepted")
	}
}
