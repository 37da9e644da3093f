package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ephem-dev/ephem/internal/signalctx"
	"github.com/ephem-dev/ephem/pkg/config"
	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/spf13/cobra"
)

// Streams are the user's standard streams; only this package writes to them.
type Streams = session.Streams

// GlobalOptions are the flags every command shares.
type GlobalOptions struct {
	// CacheDir is the image cache's directory.
	CacheDir string
	// Streams are the user's.
	Streams Streams

	backends backendSet
	audit    auditOptions
	conf     *config.Config // the configuration files, read before a command runs
}

// errUsage marks a usage error: a bad flag, argument or reference.
var errUsage = runtime.ErrUsage

// usageError wraps err as a usage error.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// NewRootCommand returns ephem's root command.
func NewRootCommand(g *GlobalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "ephem",
		Short: "Ephemeral debug containers for any process, container or pod",
		Long: `ephem starts a debug container from a tool image inside a running target's
namespaces: its network, IPC and UTS namespaces (and user, time and cgroup
where the target has its own) and, by default, its PID namespace, so
"wget localhost:80" reaches the target's server and the target's files are
at /proc/1/root. The target keeps running; nothing is installed in it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if printsOnly(cmd) {
				return nil
			}
			// Ctrl-C and SIGTERM cancel the command's context from here
			// on, before it acquires anything it must release.
			signalctx.Arm(cmd.Context())
			// Flags not given take their defaults from the config files.
			return g.loadConfig(cmd)
		},
	}
	// Installed as kubectl-ephem, ephem is the kubectl plugin "kubectl ephem".
	if filepath.Base(os.Args[0]) == "kubectl-ephem" {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl ephem"}
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if c.Name() == "debug" && strings.Contains(err.Error(), "unknown") {
			// The flag may be the command's own, given without --.
			return fmt.Errorf("%w: %w (if it is the command's, put the command after --: ephem debug TARGET [flags] -- COMMAND [ARGS])", errUsage, err)
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	})
	root.PersistentFlags().StringVar(&g.CacheDir, "cache-dir", image.DefaultDir(), "image cache directory (env EPHEM_CACHE_DIR)")
	g.backends = newBackendSet()
	g.backends.addFlags(runtime.VerbGlobal, root.PersistentFlags())
	g.audit.addFlags(root.PersistentFlags())
	root.SetUsageFunc(usage)
	root.AddCommand(newDebugCmd(g), newImagesCmd(g), newGCCmd(g), newVersionCmd(g), newLsCmd(g), newAttachCmd(g), newNSCmd(g), newCpCmd(g), newPortForwardCmd(g), newCaptureCmd(g), newAuditCmd(g), newConfigCmd(g))
	return root
}

// Execute runs ephem with args and returns the process exit code.
func Execute(ctx context.Context, args []string, streams Streams) int {
	g := &GlobalOptions{Streams: streams}
	root := NewRootCommand(g)
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		// Only the shells' completion requests call the completion
		// functions: setting them walks every command's flags.
		registerCompletions(g, root)
	}
	handOver(root, args)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	// cobra's errors for an unknown command or flag have no type of their
	// own: they are usage errors.
	if strings.HasPrefix(err.Error(), "unknown command ") {
		err = fmt.Errorf("%w: %w: see ephem --help", errUsage, err)
	}
	err = fullBuildHint(err)
	report(streams.Err, err)
	return exitCodeFor(err)
}

// report prints err as one "ephem:" line, or one line per failure when it
// joins several (a fan-out's pods); a command's own exit code prints none.
func report(w io.Writer, err error) {
	if errs := joined(err); errs != nil {
		for _, e := range errs {
			report(w, e)
		}
		return
	}
	var exit *runtime.ExitError
	if !errors.As(err, &exit) || exit.Err != nil {
		fmt.Fprintf(w, "ephem: %s\n", message(err))
	}
}

// message is err's text without the sentinel prefixes that only serve
// exit-code mapping.
func message(err error) string {
	s := err.Error()
	for _, p := range []string{"usage: "} {
		if len(s) > len(p) && s[:len(p)] == p {
			s = s[len(p):]
		}
	}
	return s
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected arguments %q", args)
	}
	return nil
}
