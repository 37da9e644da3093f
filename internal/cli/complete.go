package cli

import (
	"context"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
)

// Shell completion (cobra's "ephem completion bash|zsh|fish" scripts, which
// call "ephem __complete ARGS... WORD"). Targets come from the backends'
// runtime.TargetCompleter, each asked concurrently; whatever fails or does
// not answer within completionTimeout is left out, and nothing is printed
// on errors: a completion never disturbs the command line.

// completionTimeout bounds one completion, every backend included.
const completionTimeout = time.Second

// targetVerbs are the commands whose first argument is a target.
var targetVerbs = map[string]bool{"debug": true, "ns": true, "capture": true, "port-forward": true, "ls": true}

// registerCompletions sets the completion functions of root's commands, once
// they are all built: target arguments, attach's session IDs, images rm's
// cached references, and the values of --image, --profile, --pull and the
// backends' own flags (-n NAMESPACE).
func registerCompletions(g *GlobalOptions, root *cobra.Command) {
	walkCommands(root, func(c *cobra.Command) {
		switch {
		case c.Parent() == root && targetVerbs[c.Name()]:
			c.ValidArgsFunction = firstArg(g.completeTargets)
		case c.Parent() == root && c.Name() == "cp":
			c.ValidArgsFunction = g.completeCopyOperand
		case c.Parent() == root && c.Name() == "attach":
			c.ValidArgsFunction = firstArg(g.completeSessions)
		case c.Parent() != nil && c.Parent().Parent() == root && c.Parent().Name() == "images" && c.Name() == "rm":
			c.ValidArgsFunction = g.completeImages
		}
		flags := []*pflag.FlagSet{c.LocalNonPersistentFlags()}
		if c == root {
			flags = append(flags, c.PersistentFlags())
		}
		for _, fs := range flags {
			fs.VisitAll(func(f *pflag.Flag) { registerFlagCompletion(g, c, f) })
		}
	})
}

// registerFlagCompletion gives flag f of c its completion function, unless
// it has one or takes no value.
func registerFlagCompletion(g *GlobalOptions, c *cobra.Command, f *pflag.Flag) {
	if _, ok := c.GetFlagCompletionFunc(f.Name); ok || f.NoOptDefVal != "" {
		return
	}
	var fn cobra.CompletionFunc
	switch f.Name {
	case "image":
		fn = g.completeImages
	case "profile":
		fn = fixedValues(profile.Names()...)
	case "pull":
		fn = fixedValues("always", "missing", "never")
	case "image-pull-policy":
		fn = fixedValues("Always", "IfNotPresent", "Never")
	case "cache-dir":
		fn = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		}
	default:
		if _, own := f.Annotations[annGroup]; !own {
			return
		}
		name := f.Name
		fn = func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return g.completeBackendFlag(completionContext(cmd), name, toComplete)
		}
	}
	// A flag shared by several commands is registered once; the error
	// says so.
	_ = c.RegisterFlagCompletionFunc(f.Name, fn)
}

// walkCommands calls fn on c and every command below it.
func walkCommands(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walkCommands(sub, fn)
	}
}

// firstArg completes the first argument with fn, and nothing after it.
func firstArg(fn func(ctx context.Context, toComplete string) []runtime.Completion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return candidates(fn(completionContext(cmd), toComplete))
	}
}

// fixedValues completes a flag that takes one of values.
func fixedValues(values ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
}

// completionContext is cmd's context (cobra's own when it has none).
func completionContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// candidates turns cs into cobra's candidates ("VALUE\tDESCRIPTION"); a
// value ending in ':' or '/' is a prefix to go on typing, with no space
// after it.
func candidates(cs []runtime.Completion) ([]cobra.Completion, cobra.ShellCompDirective) {
	dir := cobra.ShellCompDirectiveNoFileComp
	out := make([]cobra.Completion, 0, len(cs))
	for _, c := range cs {
		if strings.HasSuffix(c.Value, ":") || strings.HasSuffix(c.Value, "/") {
			dir |= cobra.ShellCompDirectiveNoSpace
		}
		out = append(out, cobra.CompletionWithDesc(c.Value, c.Description))
	}
	return out, dir
}

// builtBackends builds every backend the command line configures, leaving
// out those that cannot be built (no kubeconfig).
func (g *GlobalOptions) builtBackends() []runtime.Backend {
	var out []runtime.Backend
	for _, b := range g.backends {
		be, err := b.cfg.New(runtime.Env{CacheDir: g.CacheDir, Log: io.Discard})
		if err == nil && be != nil {
			out = append(out, be)
		}
	}
	return out
}

// completeTargets asks every backend that completes targets, at once, and
// returns their candidates, de-duplicated, in the backends' order.
func (g *GlobalOptions) completeTargets(ctx context.Context, toComplete string) []runtime.Completion {
	return g.askBackends(ctx, func(ctx context.Context, be runtime.Backend) []runtime.Completion {
		if tc, ok := be.(runtime.TargetCompleter); ok {
			cs, err := tc.CompleteTargets(ctx, toComplete)
			if err == nil {
				return cs
			}
		}
		return nil
	})
}

// completeBackendFlag completes a backend's own flag (-n NAMESPACE).
func (g *GlobalOptions) completeBackendFlag(ctx context.Context, name, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cs := g.askBackends(ctx, func(ctx context.Context, be runtime.Backend) []runtime.Completion {
		if fc, ok := be.(runtime.FlagCompleter); ok {
			cs, err := fc.CompleteFlag(ctx, name, toComplete)
			if err == nil {
				return cs
			}
		}
		return nil
	})
	if len(cs) == 0 {
		// No backend completes it (--kubeconfig): the shell's files.
		return nil, cobra.ShellCompDirectiveDefault
	}
	return candidates(cs)
}

// askBackends calls ask on every built backend concurrently, within
// completionTimeout, and returns the answers in the backends' order,
// each value once.
func (g *GlobalOptions) askBackends(ctx context.Context, ask func(context.Context, runtime.Backend) []runtime.Completion) []runtime.Completion {
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	bes := g.builtBackends()
	answers := make([][]runtime.Completion, len(bes))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	done := make(chan struct{})
	for i, be := range bes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs := ask(ctx, be)
			mu.Lock()
			answers[i] = cs
			mu.Unlock()
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	var out []runtime.Completion
	for _, cs := range answers {
		for _, c := range cs {
			if !seen[c.Value] {
				seen[c.Value] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// completeSessions lists the default backend's sessions (what attach ID
// takes).
func (g *GlobalOptions) completeSessions(ctx context.Context, toComplete string) []runtime.Completion {
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	b, err := g.backends.fallback()
	if err != nil {
		return nil
	}
	return g.sessionsOf(ctx, b, toComplete)
}

// sessionsOf lists b's sessions whose ID starts with toComplete.
func (g *GlobalOptions) sessionsOf(ctx context.Context, b backend, toComplete string) []runtime.Completion {
	be, err := b.cfg.New(runtime.Env{CacheDir: g.CacheDir, Log: io.Discard})
	if err != nil {
		return nil
	}
	l, ok := be.(runtime.Lister)
	if !ok {
		return nil
	}
	ss, err := l.List(ctx, target.Ref{})
	if err != nil {
		return nil
	}
	var out []runtime.Completion
	for _, s := range ss {
		if strings.HasPrefix(s.ID, toComplete) {
			out = append(out, runtime.Completion{Value: s.ID, Description: strings.TrimSpace(s.Target + " " + s.Image + " " + s.State)})
		}
	}
	return out
}

// completeImages lists the cached image references (images ls), most
// recently used first. A cache that does not exist is not created.
func (g *GlobalOptions) completeImages(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	dir := g.CacheDir
	if dir == "" {
		dir = image.DefaultDir()
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	s, err := image.Open(dir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer func() { _ = s.Close() }()
	es, err := s.List(completionContext(cmd))
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].LastUsed.After(es[j].LastUsed) })
	var out []runtime.Completion
	seen := map[string]bool{}
	for _, e := range es {
		if strings.HasPrefix(e.Ref, toComplete) && !seen[e.Ref] {
			seen[e.Ref] = true
			out = append(out, runtime.Completion{Value: e.Ref, Description: shortHex(e.Digest.Hex) + " " + humanBytes(e.Size)})
		}
	}
	cs, _ := candidates(out)
	return cs, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// completeCopyOperand completes cp's SRC and DST: a target followed by
// ':' (TARGET:PATH), or a local path. A word that already holds a
// target and a path is left to the shell.
func (g *GlobalOptions) completeCopyOperand(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	path := strings.Contains(strings.ReplaceAll(toComplete, "://", ""), ":/")
	if len(args) >= 2 || path || strings.HasPrefix(toComplete, "/") || strings.HasPrefix(toComplete, ".") {
		return nil, cobra.ShellCompDirectiveDefault
	}
	var out []runtime.Completion
	for _, c := range g.completeTargets(completionContext(cmd), toComplete) {
		if !strings.HasSuffix(c.Value, ":") && !strings.HasSuffix(c.Value, "/") {
			c.Value += ":"
		}
		out = append(out, c)
	}
	return candidates(out)
}
