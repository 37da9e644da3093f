package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// Output formats of -o. Table is the default; wide adds columns; json and
// yaml print the command's objects with the field names docs/output.md
// lists (yaml uses the same names as json).
const (
	formatTable = "table"
	formatWide  = "wide"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// outputOptions are a command's -o and --no-headers flags.
type outputOptions struct {
	// Format is one of formats.
	Format string
	// NoHeaders leaves out the table's header line.
	NoHeaders bool

	formats []string
}

// addOutputFlags adds -o (one of formats, the first the default) and, when
// a table format is among them, --no-headers to cmd.
func addOutputFlags(cmd *cobra.Command, o *outputOptions, formats ...string) {
	o.formats = formats
	cmd.Flags().StringVarP(&o.Format, "output", "o", formats[0], "output format: "+strings.Join(formats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	if slices.Contains(formats, formatTable) {
		cmd.Flags().BoolVar(&o.NoHeaders, "no-headers", false, "leave out the table's header line")
	}
}

// validate refuses a format the command does not print.
func (o *outputOptions) validate() error {
	if o.Format == "" {
		o.Format = o.formats[0]
	}
	if !slices.Contains(o.formats, o.Format) {
		return usageError("-o %q: use %s", o.Format, strings.Join(o.formats, ", "))
	}
	return nil
}

// structured says whether the format prints objects rather than a table.
func (o *outputOptions) structured() bool {
	return o.Format == formatJSON || o.Format == formatYAML
}

// printObject writes v as format: "json" (indented, one trailing newline)
// or "yaml" (the json field names). Any other format is a usage error.
func printObject(w io.Writer, format string, v any) error {
	switch format {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("writing json: %w", err)
		}
		return nil
	case formatYAML:
		if err := writeYAML(w, v); err != nil {
			return fmt.Errorf("writing yaml: %w", err)
		}
		return nil
	}
	return usageError("-o %q: use json or yaml", format)
}

// writeYAML writes v as YAML with v's json field names, keys sorted, as
// kubectl -o yaml does: v goes through JSON, which YAML reads as it is.
func writeYAML(w io.Writer, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc any
	if err := yaml.Unmarshal(j, &doc); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}

// printTable writes rows under header (unless noHeaders) in aligned
// columns; an empty cell prints as "-" so columns stay splittable.
func printTable(w io.Writer, header []string, rows [][]string, noHeaders bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !noHeaders {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			if c == "" {
				c = "-"
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
