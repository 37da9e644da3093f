package cli

import (
	"fmt"

	"github.com/ephem-dev/ephem/internal/buildinfo"
	"github.com/spf13/cobra"
)

// formatText is version's default output: one "key: value" line each.
const formatText = "text"

func newVersionCmd(g *GlobalOptions) *cobra.Command {
	var o outputOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print ephem's version, commit, Go version and platform",
		Long: `Print ephem's version, the commit it was built from, the Go version that
built it and its platform. A release build carries its version; any other
build says "dev" and, when built in a git checkout, the commit.`,
		Example: `  ephem version
  ephem version -o json     # {"version": ..., "commit": ..., "go": ..., "platform": ...}
  kubectl ephem version     # installed as the kubectl plugin`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			info := buildinfo.Get()
			if o.structured() {
				return printObject(g.Streams.Out, o.Format, info)
			}
			return printVersion(g, info)
		},
	}
	addOutputFlags(cmd, &o, formatText, formatJSON, formatYAML)
	return cmd
}

// printVersion writes info as text: "ephem VERSION", then one line per field.
func printVersion(g *GlobalOptions, info buildinfo.Info) error {
	commit, date := info.Commit, info.Date
	if commit == "" {
		commit = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	_, err := fmt.Fprintf(g.Streams.Out, "ephem %s\n  commit:   %s\n  built:    %s\n  go:       %s\n  platform: %s\n",
		info.Version, commit, date, info.Go, info.Platform)
	return err
}
