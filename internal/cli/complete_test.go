package cli

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
)

// A fake backend under the hidden tc:// scheme completes targets and its
// own ls flag --tc-zone, so that completion is tested through cobra's
// __complete protocol exactly as the shells call it.
func init() {
	runtime.Register(runtime.Registration{
		Name: "test-complete", FlagGroup: "Completion test flags",
		NewConfig: func() runtime.Config { return &completeConfig{} },
		Schemes: []target.Scheme{{Name: "test-complete", Prefixes: []string{"tc://"}, Example: "tc://NAME",
			Hidden: true, Parse: target.ParseContainer}},
	})
}

type completeConfig struct{ zone string }

func (c *completeConfig) AddFlags(verb string, fs *pflag.FlagSet) {
	if verb == runtime.VerbList {
		fs.StringVar(&c.zone, "tc-zone", "", "the fake's zone")
	}
}

func (c *completeConfig) New(runtime.Env) (runtime.Backend, error) { return completer{}, nil }

// completer answers tc://web and tc://db; tc://slow blocks until its
// context ends, tc://err fails.
type completer struct{}

func (completer) CompleteTargets(ctx context.Context, toComplete string) ([]runtime.Completion, error) {
	switch {
	case strings.HasPrefix(toComplete, "tc://slow"):
		<-ctx.Done()
		return []runtime.Completion{{Value: "tc://slow-but-late"}}, ctx.Err()
	case strings.HasPrefix(toComplete, "tc://err"):
		return []runtime.Completion{{Value: "tc://err-ignored"}}, errors.New("the fake fails")
	}
	var out []runtime.Completion
	for _, c := range []runtime.Completion{{Value: "tc://db", Description: "fake db"}, {Value: "tc://web", Description: "fake web"}} {
		if strings.HasPrefix(c.Value, toComplete) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (completer) List(context.Context, target.Ref) ([]runtime.Session, error) {
	return []runtime.Session{{ID: "a1b2", Target: "tc://web", Image: "busybox", State: "Running"}, {ID: "c3d4", Target: "tc://db"}}, nil
}

func (completer) CompleteFlag(_ context.Context, name, toComplete string) ([]runtime.Completion, error) {
	if name != "tc-zone" {
		return nil, nil
	}
	var out []runtime.Completion
	for _, z := range []string{"east", "west"} {
		if strings.HasPrefix(z, toComplete) {
			out = append(out, runtime.Completion{Value: z})
		}
	}
	return out, nil
}

// complete runs "ephem __complete args..." and returns the candidates
// (values only), the directive line and stderr.
func complete(t *testing.T, args ...string) (values []string, directive string, stderr string) {
	t.Helper()
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	code, out, errOut := run(t, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	directive = lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		values = append(values, v)
	}
	return values, directive, errOut
}

func TestCompleteTargets(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"debug", "tc://"}, []string{"tc://db", "tc://web"}},
		{[]string{"debug", "tc://w"}, []string{"tc://web"}},
		{[]string{"ns", "tc://d"}, []string{"tc://db"}},
		{[]string{"capture", "tc://"}, []string{"tc://db", "tc://web"}},
		{[]string{"port-forward", "tc://"}, []string{"tc://db", "tc://web"}},
		{[]string{"ls", "tc://"}, []string{"tc://db", "tc://web"}},
		{[]string{"cp", "tc://w"}, []string{"tc://web:"}},
		// Only the first argument is a target.
		{[]string{"debug", "tc://web", "tc://"}, nil},
		{[]string{"debug", "tc://err"}, nil},
	} {
		got, dir, stderr := complete(t, tc.args...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("__complete %q = %q, want %q", tc.args, got, tc.want)
		}
		if !strings.HasPrefix(dir, ":") || strings.Contains(stderr, "ephem:") {
			t.Errorf("__complete %q: directive %q, stderr %q", tc.args, dir, stderr)
		}
	}
}

func TestCompleteDescriptionsAndDirective(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	_, out, _ := run(t, "__complete", "debug", "tc://w")
	if want := "tc://web\tfake web\n:4\n"; out != want {
		t.Errorf("__complete debug tc://w printed %q, want %q (value, tab, description; NoFileComp)", out, want)
	}
	// A scheme prefix is to be continued: no space after it.
	_, dir, _ := complete(t, "debug", "doc")
	if dir != ":6" {
		t.Errorf("__complete debug doc: directive %s, want :6 (NoSpace|NoFileComp)", dir)
	}
}

// A backend that does not answer in time is left out; the others' answers
// still come, within the bound.
func TestCompleteSlowBackendIsBounded(t *testing.T) {
	start := time.Now()
	got, _, stderr := complete(t, "debug", "tc://slow")
	if took := time.Since(start); took > completionTimeout+500*time.Millisecond {
		t.Errorf("completion took %v, want at most about %v", took, completionTimeout)
	}
	if len(got) != 0 || strings.Contains(stderr, "ephem:") {
		t.Errorf("slow backend: candidates %q, stderr %q; want none and silence", got, stderr)
	}
}

func TestCompleteFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"debug", "tc://web", "--profile", ""}, profile.Names()},
		{[]string{"debug", "tc://web", "--pull", ""}, []string{"always", "missing", "never"}},
		{[]string{"debug", "tc://web", "--pull", "m"}, []string{"missing"}},
		{[]string{"ls", "-o", ""}, []string{"table", "wide", "json", "yaml"}},
		{[]string{"images", "ls", "-o", ""}, []string{"table", "wide", "json", "yaml"}},
		{[]string{"ns", "tc://web", "-o", ""}, []string{"table", "json", "yaml"}},
		{[]string{"ls", "--tc-zone", "w"}, []string{"west"}},
	} {
		got, _, _ := complete(t, tc.args...)
		// cobra's FixedCompletions leaves filtering to the shell.
		got = slices.DeleteFunc(got, func(s string) bool { return !strings.HasPrefix(s, tc.args[len(tc.args)-1]) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("__complete %q = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestCompleteImagesFromCache(t *testing.T) {
	cache, refs, _ := cachedImages(t)
	got, dir, _ := complete(t, "--cache-dir", cache, "debug", "tc://web", "--image", "")
	slices.Sort(got)
	want := slices.Clone(refs)
	slices.Sort(want)
	if !slices.Equal(got, want) || dir != ":36" {
		t.Errorf("--image completes %q (directive %s), want the cached %q (:36, NoFileComp|KeepOrder)", got, dir, want)
	}
	got, _, _ = complete(t, "--cache-dir", cache, "images", "rm", "")
	if len(got) != len(refs) {
		t.Errorf("images rm completes %q, want %q", got, refs)
	}
	// A cache that does not exist is not created by completing.
	missing := t.TempDir() + "/none"
	if got, _, _ := complete(t, "--cache-dir", missing, "debug", "x", "--image", ""); len(got) != 0 {
		t.Errorf("--image with no cache completes %q", got)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := run(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, stderr %q, script without __complete", sh, code, errOut)
		}
	}
}

// BenchmarkCompleteDebug measures one in-process "__complete debug WORD"
// with the real local backend beside the fake (docker:// asks the daemon
// when one answers; pid: scans /proc).
func BenchmarkCompleteDebug(b *testing.B) {
	b.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	for _, word := range []string{"", "docker://", "pid:"} {
		b.Run(strings.TrimSuffix(word, "://")+"_", func(b *testing.B) {
			for b.Loop() {
				var out strings.Builder
				Execute(context.Background(), []string{"__complete", "debug", word}, Streams{In: strings.NewReader(""), Out: &out, Err: io.Discard})
			}
		})
	}
}

func TestCompleteSessions(t *testing.T) {
	g := &GlobalOptions{}
	b := backend{reg: runtime.Registration{Name: "test-complete"}, cfg: &completeConfig{}}
	got := g.sessionsOf(context.Background(), b, "a")
	want := []runtime.Completion{{Value: "a1b2", Description: "tc://web busybox Running"}}
	if !slices.Equal(got, want) {
		t.Errorf("sessions completing a: %v, want %v", got, want)
	}
	if got := g.sessionsOf(context.Background(), b, ""); len(got) != 2 {
		t.Errorf("sessions completing '': %v, want both", got)
	}
}
