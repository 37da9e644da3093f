package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ephem-dev/ephem/pkg/image"
)

// newImagesCmd returns "ephem images" and its subcommands, which inspect and
// clean the image cache.
func newImagesCmd(g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List and remove cached tool images",
		Example: `  ephem images ls
  ephem images rm busybox:latest && ephem images prune`,
		Long: `ephem keeps pulled tool images unpacked in a cache (--cache-dir, default
/var/lib/ephem as root, else $XDG_CACHE_HOME/ephem or ~/.cache/ephem) so that
later runs start without pulling. These commands
list the cached references, forget some, and free the disk space of layers
no reference uses. Without a subcommand, it lists the cache like "ls".`,
		Args: noArgs,
	}
	var digestsOnly bool
	var out outputOptions
	cmd.RunE = listRun(g, &digestsOnly, &out)
	cmd.Flags().BoolVarP(&digestsOnly, "quiet", "q", false, "print only the digests, one per line")
	addOutputFlags(cmd, &out, formatTable, formatWide, formatJSON, formatYAML)
	cmd.AddCommand(newImagesLsCmd(g), newImagesRmCmd(g), newImagesPruneCmd(g))
	return cmd
}

// openStore opens the image cache named by the global options.
func openStore(g *GlobalOptions) (*image.Store, error) {
	s, err := image.Open(g.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("opening the image cache: %w", err)
	}
	return s, nil
}

func newImagesLsCmd(g *GlobalOptions) *cobra.Command {
	var digestsOnly bool
	var out outputOptions
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List cached images",
		Example: `  ephem images ls
  ephem images ls -o wide
  ephem images ls -q            # digests only, one per line`,
		Long: `List the cached image references: the digest each resolves to, the unpacked
size of its layers (shared layers count in every image), and when a run last
used it. References pulled for another platform than this host's show it.`,
		Args: noArgs,
		RunE: listRun(g, &digestsOnly, &out),
	}
	cmd.Flags().BoolVarP(&digestsOnly, "quiet", "q", false, "print only the digests, one per line")
	addOutputFlags(cmd, &out, formatTable, formatWide, formatJSON, formatYAML)
	return cmd
}

// listRun returns the action of "images ls": the table (or what -o
// asks), or with *digestsOnly the digests alone.
func listRun(g *GlobalOptions, digestsOnly *bool, out *outputOptions) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := out.validate(); err != nil {
			return err
		}
		s, err := openStore(g)
		if err != nil {
			return err
		}
		defer func() { _ = s.Close() }()
		es, err := s.List(cmd.Context())
		if err != nil {
			return fmt.Errorf("listing cached images: %w", err)
		}
		if *digestsOnly {
			return printDigests(g.Streams.Out, es)
		}
		return printImages(g.Streams.Out, *out, es, time.Now())
	}
}

// printDigests prints each distinct digest of es once, in order.
func printDigests(w io.Writer, es []image.Entry) error {
	seen := map[string]bool{}
	for _, e := range es {
		d := e.Digest.String()
		if seen[d] {
			continue
		}
		seen[d] = true
		if _, err := fmt.Fprintln(w, d); err != nil {
			return err
		}
	}
	return nil
}

// imageOutput is one cached image as images ls -o json|yaml prints it; its
// field names are stable (docs/output.md).
type imageOutput struct {
	Reference string     `json:"reference"`
	Platform  string     `json:"platform,omitempty"`
	Digest    string     `json:"digest"`
	Size      int64      `json:"size"`
	LastUsed  *time.Time `json:"lastUsed,omitempty"`
}

// printImages prints es as o asks: a table (wide: with the platform and
// the full digest), or a list of objects.
func printImages(w io.Writer, o outputOptions, es []image.Entry, now time.Time) error {
	if o.structured() {
		list := make([]imageOutput, 0, len(es))
		for _, e := range es {
			item := imageOutput{Reference: e.Ref, Platform: e.Platform, Digest: e.Digest.String(), Size: e.Size}
			if !e.LastUsed.IsZero() {
				t := e.LastUsed.UTC()
				item.LastUsed = &t
			}
			list = append(list, item)
		}
		return printObject(w, o.Format, list)
	}
	host := image.HostPlatform()
	hostStr := host.OS + "/" + host.Architecture
	wide := o.Format == formatWide
	header := []string{"REFERENCE", "DIGEST", "SIZE", "LAST USED"}
	if wide {
		header = []string{"REFERENCE", "PLATFORM", "DIGEST", "SIZE", "LAST USED"}
	}
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		if wide {
			rows = append(rows, []string{e.Ref, e.Platform, e.Digest.String(), humanBytes(e.Size), ago(now, e.LastUsed)})
			continue
		}
		ref := e.Ref
		if e.Platform != "" && !strings.HasPrefix(e.Platform+"/", hostStr+"/") {
			ref += " (" + e.Platform + ")"
		}
		rows = append(rows, []string{ref, shortHex(e.Digest.Hex), humanBytes(e.Size), ago(now, e.LastUsed)})
	}
	return printTable(w, header, rows, o.NoHeaders)
}

func newImagesRmCmd(g *GlobalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "rm REF|DIGEST...",
		Aliases: []string{"remove"},
		Short:   "Forget cached image references",
		Example: `  ephem images rm busybox:latest
  ephem images rm sha256:3b5df3589fc7`,
		Long: `Forget the given references (as ls prints them, or as given to --image), or
every reference to a digest (in full, or its first 12 or more hex digits).
Their layers stay on disk until "ephem images prune".`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("images rm needs at least one reference or digest")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(g)
			if err != nil {
				return err
			}
			defer func() { _ = s.Close() }()
			return s.Remove(cmd.Context(), args...)
		},
	}
}

func newImagesPruneCmd(g *GlobalOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Free the space of layers no cached reference uses",
		Example: `  ephem images prune
  ephem images prune --all      # empty the cache`,
		Long: `Remove the layers that no cached reference uses, and leftovers of
interrupted pulls. With --all, forget every reference first, emptying the
cache. Layers in use by a running debug container are kept.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openStore(g)
			if err != nil {
				return err
			}
			defer func() { _ = s.Close() }()
			freed, err := s.Prune(cmd.Context(), all)
			if err != nil {
				return fmt.Errorf("pruning the image cache: %w", err)
			}
			_, err = fmt.Fprintf(g.Streams.Out, "freed %s\n", humanBytes(freed))
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "forget every cached reference and remove all layers")
	return cmd
}

// shortHex abbreviates a digest's hex to the 12 digits ls shows and rm accepts.
func shortHex(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}

// humanBytes formats n in decimal units, e.g. "12.3 MB".
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

// ago describes how long before now t was, e.g. "3 minutes ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
