package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// NSOptions are the inputs of "ephem ns".
type NSOptions struct {
	g *GlobalOptions

	TargetArg string

	out outputOptions

	flags   *pflag.FlagSet
	target  target.Ref
	backend backend
}

func newNSCmd(g *GlobalOptions) *cobra.Command {
	o := &NSOptions{g: g}
	cmd := &cobra.Command{
		Use:   "ns TARGET [-o table|json|yaml]",
		Short: "Show a target's namespaces beside the host's and a debug container's",
		Example: `  ephem ns pid:4242
  ephem ns docker://web -o json
  ephem ns pod/web`,
		Long: `Show every namespace of a target (cgroup, ipc, mnt, net, pid, time, user,
uts) beside the host's (PID 1's) and the one a debug container would have:
shared with the target, or its own (the mount namespace). Below them: the
command line of PID 1 in the target's PID namespace, its uid and gid maps,
effective capabilities, seccomp mode, cgroups and root. Locally no container
is started. On Kubernetes the report comes from an idle ephemeral container
in the pod (added once, reused by later cp, ns and capture); the node's own
namespaces are not visible from a pod, so the host column is empty.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	addOutputFlags(cmd, &o.out, formatTable, formatJSON, formatYAML)
	g.backends.addFlags(runtime.VerbNS, cmd.Flags())
	o.flags = cmd.Flags()
	return cmd
}

// Complete fills the options from the arguments.
func (o *NSOptions) Complete(args []string) error {
	if len(args) != 1 {
		return usageError("ns needs one target: %s", target.Supported())
	}
	o.TargetArg = args[0]
	return nil
}

// Validate checks the options without I/O.
func (o *NSOptions) Validate() error {
	if err := o.out.validate(); err != nil {
		return err
	}
	var err error
	o.target, o.backend, err = o.g.backends.forTarget(o.TargetArg, o.flags)
	return err
}

// Run asks the target's backend for the report and prints it.
func (o *NSOptions) Run(ctx context.Context) error {
	in, err := capability[runtime.Inspector](o.g, o.backend, o.target, "ns", nil, image.PullOptions{})
	if err != nil {
		return err
	}
	r, err := in.Inspect(ctx, o.target)
	if err != nil {
		return err
	}
	if o.out.structured() {
		return printObject(o.g.Streams.Out, o.out.Format, r)
	}
	return printReport(o.g.Streams.Out, r, o.out.NoHeaders)
}

// printReport writes r as a table of namespaces, then the target's
// process details.
func printReport(w io.Writer, r *runtime.NamespaceReport, noHeaders bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !noHeaders {
		fmt.Fprintln(tw, "NAMESPACE\tHOST\tTARGET\tDEBUG\t")
	}
	for _, n := range r.Namespaces {
		debug, mark := n.Debug, "shared"
		if !n.Shared {
			debug, mark = "(new)", "own"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Type, inode(n.Host), inode(n.Target), inode(debug), mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nHOST is the namespaces of %s.\n\n", r.HostFrom)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"PID 1", strings.Join(r.Init, " ")},
		{"uid_map", strings.Join(r.UIDMap, "; ")},
		{"gid_map", strings.Join(r.GIDMap, "; ")},
		{"CapEff", r.CapEff},
		{"seccomp", r.Seccomp},
		{"cgroup", strings.Join(r.Cgroup, "; ")},
		{"root", r.Root},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
}

// inode shortens "net:[4026531840]" to 4026531840.
func inode(link string) string {
	if _, rest, ok := strings.Cut(link, ":["); ok {
		return strings.TrimSuffix(rest, "]")
	}
	return link
}
