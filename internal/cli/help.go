package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usage writes c's usage: cobra's, with each backend's flags under their
// own heading ("Kubernetes flags") after the flags every target has. It
// is a function, not a template as cobra allows: executing a text/template
// calls reflect's MethodByName, after which the linker must keep every
// exported method of every type, which made kubectl-ephem a third larger
// (and, since the binary's pages are mapped whole, its memory too).
func usage(c *cobra.Command) error {
	w := c.OutOrStderr()
	// The parents' persistent flags count in UseLine's "[flags]" once
	// merged into c's, which the template's first flag query did.
	c.InheritedFlags()
	var b strings.Builder
	b.WriteString("Usage:")
	if c.Runnable() {
		b.WriteString("\n  " + c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n  " + c.CommandPath() + " [command]")
	}
	if len(c.Aliases) > 0 {
		b.WriteString("\n\nAliases:\n  " + c.NameAndAliases())
	}
	if c.HasExample() {
		b.WriteString("\n\nExamples:\n" + c.Example)
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n\nAvailable Commands:")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(&b, "\n  %-*s %s", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
	}
	if f := ungroupedFlags(c.LocalFlags()); f != "" {
		b.WriteString("\n\nFlags:\n" + trimRight(f))
	}
	if f := ungroupedFlags(c.InheritedFlags()); f != "" {
		b.WriteString("\n\nGlobal Flags:\n" + trimRight(f))
	}
	for _, g := range flagGroups(c) {
		b.WriteString("\n\n" + g + ":\n" + trimRight(groupFlags(c, g)))
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n\nUse \"" + c.CommandPath() + " [command] --help\" for more information about a command.")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func trimRight(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) }

// The help headings of flags that are not a backend's: the debug image,
// and ephem's own image cache on this host (local targets).
const (
	groupImage = "Image flags"
	groupLocal = "Local flags (ephem's image cache on this host)"
)

// setFlagGroup puts fs's flags names under the help heading group.
func setFlagGroup(fs *pflag.FlagSet, group string, names ...string) {
	for _, n := range names {
		f := fs.Lookup(n)
		if f == nil {
			panic("setFlagGroup: no flag --" + n)
		}
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[annGroup] = []string{group}
	}
}

// ungroupedFlags is the usage of fs's flags that belong to no backend group.
func ungroupedFlags(fs *pflag.FlagSet) string {
	return selectFlags(func(f *pflag.Flag) bool { return len(f.Annotations[annGroup]) == 0 }, fs)
}

// flagGroups lists the groups of c's flags: image, local, then the
// backends' in order of appearance.
func flagGroups(c *cobra.Command) []string {
	out := []string{}
	var found []string
	seen := map[string]bool{}
	for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.InheritedFlags()} {
		fs.VisitAll(func(f *pflag.Flag) {
			if g := f.Annotations[annGroup]; len(g) == 1 && !f.Hidden && !seen[g[0]] {
				seen[g[0]] = true
				found = append(found, g[0])
			}
		})
	}
	for _, g := range []string{groupImage, groupLocal} {
		if seen[g] {
			out = append(out, g)
		}
	}
	for _, g := range found {
		if g != groupImage && g != groupLocal {
			out = append(out, g)
		}
	}
	return out
}

// groupFlags is the usage of c's flags in group.
func groupFlags(c *cobra.Command, group string) string {
	in := func(f *pflag.Flag) bool { g := f.Annotations[annGroup]; return len(g) == 1 && g[0] == group }
	return selectFlags(in, c.LocalFlags(), c.InheritedFlags())
}

// selectFlags is the usage of the flags of sets that keep selects.
func selectFlags(keep func(*pflag.Flag) bool, sets ...*pflag.FlagSet) string {
	out := pflag.NewFlagSet("usage", pflag.ContinueOnError)
	for _, fs := range sets {
		fs.VisitAll(func(f *pflag.Flag) {
			if keep(f) && out.Lookup(f.Name) == nil {
				out.AddFlag(f)
			}
		})
	}
	return out.FlagUsages()
}
