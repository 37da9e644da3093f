package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// headerLine is a page's .TH line, whose date is the month it was written.
var headerLine = regexp.MustCompile(`(?m)^\.TH .*$`)

// TestPagesUpToDate regenerates the man pages and compares them with
// docs/man, so that they cannot drift from the commands' help: after
// changing a command, run go run ./hack/man.
func TestPagesUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := generate(dir); err != nil {
		t.Fatal(err)
	}
	want := readPages(t, dir)
	got := readPages(t, filepath.Join("..", "..", "docs", "man"))
	if len(want) < 10 {
		t.Fatalf("only %d pages generated", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("docs/man is out of date; run go run ./hack/man (-want +got):\n%s", diff)
	}
}

// readPages reads dir's *.1 files by name, without their .TH line.
func readPages(t *testing.T, dir string) map[string]string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.1"))
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		s := headerLine.ReplaceAllString(string(b), ".TH")
		if !strings.Contains(s, ".SH NAME") {
			t.Errorf("%s has no NAME section", n)
		}
		pages[filepath.Base(n)] = s
	}
	return pages
}
