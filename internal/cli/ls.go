package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime/kube"
	"github.com/ephem-dev/ephem/pkg/runtime/local"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
)

func newLsCmd(g *GlobalOptions) *cobra.Command {
	var selector string
	var kubeAll bool
	cmd := &cobra.Command{
		Use:   "ls [pod/NAME | deploy/NAME | -l SELECTOR | --kube]",
		Short: "List debug sessions: this host's interactive ones, or a pod's or namespace's ephemeral containers",
		Long: `Without arguments, ls lists this host's interactive debug sessions (the ones
"ephem attach ID" reattaches to). With a pod or workload, -l, or --kube it lists
Kubernetes ephemeral containers with image, target, state, age and exit code.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && selector == "" && !kubeAll {
				return listLocal(g)
			}
			var ref *target.Ref
			if len(args) == 1 {
				r, err := target.Parse(args[0])
				if err != nil {
					return err
				}
				if r.Kind != target.Kubernetes || r.Scheme == "node" {
					return usageError("ls lists Kubernetes debug containers: name a pod or workload, not %s", r.Scheme)
				}
				ref = &r
			}
			b, err := kube.New(kube.Options{Config: g.Kube, Selector: selector, AllPods: true, Log: g.Streams.Err})
			if err != nil {
				return fmt.Errorf("setting up the Kubernetes client: %w", err)
			}
			sessions, err := b.List(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return kube.PrintSessions(g.Streams.Out, sessions, time.Now())
		},
	}
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "list the debug containers of pods matching this label selector")
	cmd.Flags().BoolVar(&kubeAll, "kube", false, "list the debug containers of every pod in the namespace")
	return cmd
}

// listLocal prints this host's live interactive sessions.
func listLocal(g *GlobalOptions) error {
	if err := local.CheckPrivileges(); err != nil {
		return err
	}
	sessions, err := local.ListSessions()
	if err != nil {
		return fmt.Errorf("listing local sessions: %w", err)
	}
	tw := tabwriter.NewWriter(g.Streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTARGET\tIMAGE\tCOMMAND\tAGE")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Target, s.Image, strings.Join(s.Command, " "),
			duration.HumanDuration(time.Since(s.Started)))
	}
	return tw.Flush()
}

func newAttachCmd(g *GlobalOptions) *cobra.Command {
	var tty bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach ID | pod/NAME/CONTAINER",
		Short: "Reattach to a detached local session, or to a Kubernetes debug container (one that ended shows its output and exit code)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return err
			}
			ref, err := target.Parse(args[0])
			if err != nil || ref.Kind != target.Kubernetes {
				e := local.New(local.Options{DetachKeys: keys, Log: g.Streams.Err})
				return e.Attach(cmd.Context(), args[0], g.Streams)
			}
			b, err := kube.New(kube.Options{Config: g.Kube, DetachKeys: keys, Log: g.Streams.Err})
			if err != nil {
				return fmt.Errorf("setting up the Kubernetes client: %w", err)
			}
			return b.Attach(cmd.Context(), ref, tty || g.Streams.IsTerminal(), g.Streams)
		},
	}
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "use a terminal (default: when standard input is one)")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "key sequence that detaches")
	return cmd
}
