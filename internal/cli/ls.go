package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
)

func newLsCmd(g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls [TARGET]",
		Short: "List debug sessions: this host's interactive ones, or a target's",
		Long: `Without arguments, ls lists this host's interactive debug sessions (the ones
"ephem attach ID" reattaches to). With a target (a pod or workload, -l, or
--kube for a whole namespace) it lists that target's debug sessions: image,
target, state, age and exit code. The ID column is what ephem attach takes.`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, b, err := g.targetOrDefault(cmd, runtime.VerbList, args)
		if err != nil {
			return err
		}
		l, err := capability[runtime.Lister](g, b, ref, "ls", nil, image.PullOptions{})
		if err != nil {
			return err
		}
		sessions, err := l.List(cmd.Context(), ref)
		if err != nil {
			return err
		}
		return printSessions(g.Streams.Out, sessions, time.Now())
	}
	g.backends.addFlags(runtime.VerbList, cmd.Flags())
	return cmd
}

// targetOrDefault returns the target args (or a backend's flags) name and
// its backend, or the zero Ref and the default backend.
func (g *GlobalOptions) targetOrDefault(cmd *cobra.Command, verb string, args []string) (target.Ref, backend, error) {
	ref, ok := g.backends.implied(verb)
	if len(args) == 1 {
		var err error
		if ref, err = target.Parse(args[0]); err != nil {
			return target.Ref{}, backend{}, err
		}
		ok = true
	}
	var (
		b   backend
		err error
	)
	if ok {
		b, err = g.backends.lookup(ref)
	} else {
		b, err = g.backends.fallback()
	}
	if err != nil {
		return target.Ref{}, backend{}, err
	}
	return ref, b, checkOwnFlags(cmd.Flags(), b, ref)
}

// printSessions writes sessions as a table.
func printSessions(w io.Writer, sessions []runtime.Session, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIMAGE\tTARGET\tSTATE\tAGE\tEXIT\tCOMMAND")
	for _, s := range sessions {
		age, exit := "-", "-"
		if !s.Started.IsZero() {
			age = duration.HumanDuration(now.Sub(s.Started))
		}
		if s.ExitCode != nil {
			exit = fmt.Sprint(*s.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Image, s.Target, s.State, age, exit, strings.Join(s.Command, " "))
	}
	return tw.Flush()
}
