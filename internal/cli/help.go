package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageTemplate is cobra's, with each backend's flags under their own
// heading ("Kubernetes flags") after the flags every target has.
const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{with ungroupedFlags .LocalFlags}}

Flags:
{{. | trimTrailingWhitespaces}}{{end}}{{with ungroupedFlags .InheritedFlags}}

Global Flags:
{{. | trimTrailingWhitespaces}}{{end}}{{range $g := flagGroups .}}

{{$g}}:
{{groupFlags $ $g | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

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

func init() {
	cobra.AddTemplateFunc("ungroupedFlags", ungroupedFlags)
	cobra.AddTemplateFunc("flagGroups", flagGroups)
	cobra.AddTemplateFunc("groupFlags", groupFlags)
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
