// Command man writes ephem's man pages, one per command (ephem.1,
// ephem-debug.1, ephem-images-ls.1, ...), from the command tree's help with
// cobra/doc:
//
//	go run ./hack/man [DIR]     # default: docs/man
//
// The pages do not depend on the machine that writes them: EPHEM_*
// variables are ignored and the image cache's default is root's. The date
// in their header is SOURCE_DATE_EPOCH's month, or the current one.
// Install them with: install -m 644 -t /usr/local/share/man/man1 docs/man/*.1
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/internal/cli"
	_ "github.com/ephem-dev/ephem/pkg/runtime/backends" // every backend's flags
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

func main() {
	dir := "docs/man"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := generate(dir); err != nil {
		fmt.Fprintln(os.Stderr, "man:", err)
		os.Exit(1)
	}
}

// generate writes every command's page into dir, removing stale pages.
func generate(dir string) error {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "EPHEM_") {
			if err := os.Unsetenv(k); err != nil {
				return fmt.Errorf("clearing %s: %w", k, err)
			}
		}
	}
	date, err := headerDate()
	if err != nil {
		return err
	}
	root := cli.NewRootCommand(&cli.GlobalOptions{})
	stable(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range old {
		if strings.HasSuffix(e.Name(), ".1") {
			if err := os.Remove(dir + "/" + e.Name()); err != nil {
				return fmt.Errorf("removing a stale page: %w", err)
			}
		}
	}
	header := &doc.GenManHeader{Title: "EPHEM", Section: "1", Source: "ephem", Manual: "ephem manual", Date: &date}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("writing man pages: %w", err)
	}
	return nil
}

// stable drops what varies between runs and machines from c's tree: the
// auto-generated date line and the user-dependent cache directory default.
func stable(c *cobra.Command) {
	c.DisableAutoGenTag = true
	for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
		if f := fs.Lookup("cache-dir"); f != nil {
			f.DefValue = "/var/lib/ephem"
		}
	}
	for _, sub := range c.Commands() {
		stable(sub)
	}
}

// headerDate is SOURCE_DATE_EPOCH's time, or now.
func headerDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now().UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}
