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
