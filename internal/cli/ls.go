package cli

import (
	"fmt"
	"io"
	"strings"
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
		Example: `  ephem ls
  ephem ls pod/web -n shop
  ephem ls -l app=web -o json | jq '.[].exitCode'`,
		Long: `Without arguments, ls lists this host's interactive debug sessions (the ones
"ephem attach ID" reattaches to). With a target (a pod or workload, -l, or
--kube for a whole namespace) it lists that target's debug sessions: image,
target, state, age and exit code. The ID column is what ephem attach takes.`,
		Args: cobra.MaximumNArgs(1),
	}
	var out outputOptions
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := out.validate(); err != nil {
			return err
		}
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
		return printSessions(g.Streams.Out, out, sessions, time.Now())
	}
	addOutputFlags(cmd, &out, formatTable, formatWide, formatJSON, formatYAML)
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

// sessionOutput is one session as ls -o json|yaml prints it; its field
// names are stable (docs/output.md).
type sessionOutput struct {
	ID       string     `json:"id"`
	Target   string     `json:"target"`
	Image    string     `json:"image"`
	Command  []string   `json:"command"`
	State    string     `json:"state"`
	Started  *time.Time `json:"started,omitempty"`
	ExitCode *int       `json:"exitCode,omitempty"`
}

// printSessions writes sessions as o asks: a table (wide: with the start
// time), or a list of objects.
func printSessions(w io.Writer, o outputOptions, sessions []runtime.Session, now time.Time) error {
	if o.structured() {
		list := make([]sessionOutput, 0, len(sessions))
		for _, s := range sessions {
			so := sessionOutput{ID: s.ID, Target: s.Target, Image: s.Image, Command: s.Command, State: s.State, ExitCode: s.ExitCode}
			if so.Command == nil {
				so.Command = []string{}
			}
			if !s.Started.IsZero() {
				t := s.Started.UTC()
				so.Started = &t
			}
			list = append(list, so)
		}
		return printObject(w, o.Format, list)
	}
	header := []string{"ID", "IMAGE", "TARGET", "STATE", "AGE", "EXIT", "COMMAND"}
	if o.Format == formatWide {
		header = append(header, "STARTED")
	}
	rows := make([][]string, 0, len(sessions))
	for _, s := range sessions {
		age, exit, started := "-", "-", "-"
		if !s.Started.IsZero() {
			age = duration.HumanDuration(now.Sub(s.Started))
			started = s.Started.UTC().Format(time.RFC3339)
		}
		if s.ExitCode != nil {
			exit = fmt.Sprint(*s.ExitCode)
		}
		row := []string{s.ID, s.Image, s.Target, s.State, age, exit, strings.Join(s.Command, " ")}
		if o.Format == formatWide {
			row = append(row, started)
		}
		rows = append(rows, row)
	}
	return printTable(w, header, rows, o.NoHeaders)
}
