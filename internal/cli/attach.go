package cli

import (
	"context"
	"strings"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
)

func newAttachCmd(g *GlobalOptions) *cobra.Command {
	var tty bool
	var detachKeys string
	var rec recordFlags
	cmd := &cobra.Command{
		Use:   "attach ID",
		Short: "Reattach to a debug session, as ephem ls lists it (one that ended shows its output and exit code)",
		Example: `  ephem ls                      # the IDs of this host's sessions
  ephem attach 3f2a9c           # reattach (detach again with ctrl-p,ctrl-q)
  ephem attach pod/web/debugger-x7k2p -n shop`,
		Long: `Reattach to a debug session: a detached local session by its ID, or a
Kubernetes debug container as pod/NAME/CONTAINER. ephem ls lists both.`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		keys, err := parseDetachKeys(detachKeys)
		if err != nil {
			return err
		}
		// What is not a target reference is a session ID of this host.
		ref, err := target.Parse(args[0])
		if err != nil {
			ref = target.Ref{Scheme: target.SchemeSession, Name: args[0], Raw: args[0]}
		}
		b, err := g.backends.lookup(ref)
		if err != nil {
			return err
		}
		if err := checkOwnFlags(cmd.Flags(), b, ref); err != nil {
			return err
		}
		useTTY := tty || g.Streams.IsTerminal()
		if err := rec.check(useTTY); err != nil {
			return err
		}
		info := sessionInfo{verb: "attach", backend: strings.ToLower(b.reg.Name), target: ref.String(), tty: useTTY, record: rec}
		return g.runSession(cmd.Context(), info, func(ctx context.Context, s Streams) error {
			a, err := capability[runtime.Attacher](g, b, ref, "attach", keys, image.PullOptions{})
			if err != nil {
				return err
			}
			return a.Attach(ctx, ref, useTTY, s)
		})
	}
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "use a terminal (default: when standard input is one)")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "key sequence that detaches")
	rec.addFlags(cmd.Flags())
	g.backends.addFlags(runtime.VerbAttach, cmd.Flags())
	return cmd
}
