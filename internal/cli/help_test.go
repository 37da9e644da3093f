package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// walk calls f on c and every command below it but cobra's own (help,
// completion) and hidden ones.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
		return
	}
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// lacksExamples are the commands still without examples, waiting for their
// files' owners: remove a command from here when it gets its Example.
var lacksExamples = map[string]bool{}

// TestEveryVerbHasExamples: every runnable command's --help shows examples.
func TestEveryVerbHasExamples(t *testing.T) {
	walk(NewRootCommand(&GlobalOptions{}), func(c *cobra.Command) {
		has := strings.TrimSpace(c.Example) != ""
		switch {
		case c.Runnable() && !has && !lacksExamples[c.CommandPath()]:
			t.Errorf("%q has no Example", c.CommandPath())
		case has && lacksExamples[c.CommandPath()]:
			t.Errorf("%q has an Example now: remove it from lacksExamples", c.CommandPath())
		}
	})
}

// helpOf runs "ephem ARGS... --help" and returns what it printed.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Execute(t.Context(), append(args, "--help"), Streams{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
		t.Fatalf("ephem %v --help: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

// TestHelpKubernetesFlags: kubeconfig's flags are under "Kubernetes
// flags", not among the command's own.
func TestHelpKubernetesFlags(t *testing.T) {
	help := helpOf(t, "debug")
	own, kube, ok := strings.Cut(help, "\nKubernetes flags:\n")
	if !ok {
		t.Fatalf("ephem debug --help has no \"Kubernetes flags:\" section:\n%s", help)
	}
	for _, f := range []string{"--kubeconfig", "--context", "--namespace", "--as "} {
		if !strings.Contains(kube, f) || strings.Contains(own, f) {
			t.Errorf("%s is not (only) under Kubernetes flags:\n%s", f, help)
		}
	}
	for _, f := range []string{"--image", "--stdin", "--cache-dir"} {
		if !strings.Contains(own, f) {
			t.Errorf("%s is not before the Kubernetes flags:\n%s", f, help)
		}
	}
}

// TestVersion: text and -o json name the version, commit, Go version and
// platform; other formats are usage errors.
func TestVersion(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Execute(t.Context(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
		return code, out.String(), errb.String()
	}
	code, out, _ := run("version")
	if code != 0 || !strings.HasPrefix(out, "ephem ") {
		t.Errorf("ephem version: exit %d %q", code, out)
	}
	for _, k := range []string{"commit:", "go:", "platform:"} {
		if !strings.Contains(out, k) {
			t.Errorf("ephem version lacks %s: %q", k, out)
		}
	}
	code, out, _ = run("version", "-o", "json")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("ephem version -o json: exit %d %v: %q", code, err, out)
	}
	for _, k := range []string{"version", "commit", "go", "platform"} {
		if _, ok := got[k]; !ok {
			t.Errorf("ephem version -o json lacks %q: %s", k, out)
		}
	}
	if code, _, errOut := run("version", "-o", "wide"); code != 64 || !strings.Contains(errOut, "json") {
		t.Errorf("ephem version -o wide: exit %d %q, want 64", code, errOut)
	}
	if code, _, _ := run("version", "extra"); code != 64 {
		t.Errorf("ephem version extra: exit %d, want 64", code)
	}
}

// TestHelpFlagGroups: debug's help shows its own flags, then the image's,
// then the local image cache's, then Kubernetes', each flag once.
func TestHelpFlagGroups(t *testing.T) {
	help := helpOf(t, "debug")
	heads := []string{"\nFlags:\n", "\n" + groupImage + ":\n", "\n" + groupLocal + ":\n", "\nKubernetes flags:\n"}
	at := make([]int, len(heads))
	for i, h := range heads {
		if at[i] = strings.Index(help, h); at[i] < 0 || (i > 0 && at[i] < at[i-1]) {
			t.Fatalf("heading %q missing or out of order in:\n%s", strings.TrimSpace(h), help)
		}
	}
	section := func(i int) string {
		if i+1 < len(at) {
			return help[at[i]:at[i+1]]
		}
		return help[at[i]:]
	}
	for flag, want := range map[string]int{"--profile": 0, "--image string": 1, "--pull string": 1, "--pull-timeout": 2, "--insecure-registry": 2, "--kubeconfig": 3} {
		for i := range heads {
			if got := strings.Contains(section(i), flag); got != (i == want) {
				t.Errorf("%s under %q: %v, want only under %q", flag, strings.TrimSpace(heads[i]), got, strings.TrimSpace(heads[want]))
			}
		}
	}
}
