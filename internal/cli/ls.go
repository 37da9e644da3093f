package cli

import (
	"fmt"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime/kube"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
)

func newLsCmd(g *GlobalOptions) *cobra.Command {
	var selector string
	cmd := &cobra.Command{
		Use:   "ls [pod/NAME | deploy/NAME | -l SELECTOR]",
		Short: "List debug containers (Kubernetes ephemeral containers) with image, state, age and exit code",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
	return cmd
}

func newAttachCmd(g *GlobalOptions) *cobra.Command {
	var tty bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach pod/NAME/CONTAINER",
		Short: "Reattach to a running debug container (or show the output and exit code of one that ended)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := target.Parse(args[0])
			if err != nil {
				return err
			}
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return err
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
