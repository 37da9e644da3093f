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

// templateUsage is cobra's usage template with the flag groups, which
// usage replaced (a template executed keeps every method in the binary).
const templateUsage = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{with ungroupedFlags .LocalFlags}}

Flags:
{{. | trimTrailingWhitespaces}}{{end}}{{with ungroupedFlags .InheritedFlags}}

Global Flags:
{{. | trimTrailingWhitespaces}}{{end}}{{range $g := flagGroups .}}

{{$g}}:
{{groupFlags $ $g | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// TestUsageMatchesTemplate: every command's usage is, byte for byte, what
// the template it replaced printed.
func TestUsageMatchesTemplate(t *testing.T) {
	cobra.AddTemplateFunc("ungroupedFlags", ungroupedFlags)
	cobra.AddTemplateFunc("flagGroups", flagGroups)
	cobra.AddTemplateFunc("groupFlags", groupFlags)
	root := NewRootCommand(&GlobalOptions{})
	// Every command's Usage now executes the template (a command without
	// a usage function of its own asks its parent's).
	root.SetUsageFunc(nil)
	root.SetUsageTemplate(templateUsage)
	n := 0
	walk(root, func(c *cobra.Command) {
		var got, want bytes.Buffer
		c.SetOut(&got)
		if err := usage(c); err != nil {
			t.Fatalf("%s: %v", c.CommandPath(), err)
		}
		c.SetOut(&want)
		if err := c.Usage(); err != nil {
			t.Fatalf("%s: template: %v", c.CommandPath(), err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: usage differs from the template's:\n--- got\n%s\n--- want\n%s", c.CommandPath(), got.String(), want.String())
		}
		n++
	})
	if n < 10 {
		t.Fatalf("compared %d commands, want every one", n)
	}
}
