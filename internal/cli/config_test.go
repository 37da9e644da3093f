package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/pkg/config"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// useConfig makes ephem read user and system (YAML texts; "" for no file)
// and clears the environment variables that beat them. It returns the
// two paths.
func useConfig(t *testing.T, user, system string) (string, string) {
	t.Helper()
	for _, k := range config.Keys {
		if k.Env != "" {
			t.Setenv(k.Env, "")
		}
	}
	dir := t.TempDir()
	p := config.Paths{User: filepath.Join(dir, "user.yaml"), System: filepath.Join(dir, "system.yaml")}
	for path, text := range map[string]string{p.User: user, p.System: system} {
		if text == "" {
			continue
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	saved := configPaths
	configPaths = func() config.Paths { return p }
	t.Cleanup(func() { configPaths = saved })
	return p.User, p.System
}

// runRoot runs ephem with args like run, and returns the root command too
// (for its flags' values).
func runRoot(t *testing.T, args ...string) (*cobra.Command, int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	g := &GlobalOptions{Streams: Streams{In: strings.NewReader(""), Out: &out, Err: &errOut}}
	root := NewRootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		report(&errOut, err)
	}
	return root, exitCodeFor(err), out.String(), errOut.String()
}

const (
	userYAML = `# per-backend images over the system's image
local:
  image: 127.0.0.1:5050/tools/local:1
kubernetes.image: 127.0.0.1:5050/tools/kube:1
pull: never
profile: netadmin
insecure-registries: [reg.corp:5000]
audit:
  enabled: false
`
	systemYAML = `image: corp/tools:1
pull: always
cache-dir: /srv/ephem-cache
audit: {log: /var/log/ephem-test.jsonl}
record:
  dir: /var/log/ephem-rec
`
)

// TestConfigDebugDefaults: the files set debug's defaults, the image by
// the target's backend; the environment and flags beat them.
func TestConfigDebugDefaults(t *testing.T) {
	useConfig(t, userYAML, systemYAML)
	o, err := validate(t, "pid:42", "--", "true")
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Container{Image: "127.0.0.1:5050/tools/local:1", PullPolicy: spec.PullNever, Command: []string{"true"},
		SharePID: true, Security: spec.Security{AddCapabilities: []string{"NET_ADMIN", "NET_RAW"}}}
	if d := cmp.Diff(want, o.container); d != "" {
		t.Errorf("local target (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"reg.corp:5000"}, o.Insecure); d != "" || o.g.CacheDir != "/srv/ephem-cache" {
		t.Errorf("insecure registries (-want +got):\n%s; cache dir %q", d, o.g.CacheDir)
	}
	if o.flags.Changed("pull") || o.flags.Changed("image") {
		t.Errorf("a value from a file counts as given on the command line")
	}

	o, err = validate(t, "pod/web", "--", "true")
	if err != nil {
		t.Fatal(err)
	}
	if o.container.Image != "127.0.0.1:5050/tools/kube:1" {
		t.Errorf("Kubernetes target: image %q, want kubernetes.image", o.container.Image)
	}

	o, err = validate(t, "pid:42", "--image", "flag/img:1", "--pull", "missing", "--profile", "general",
		"--insecure-registry", "other:5000", "--cache-dir", "/tmp/flag-cache", "--", "true")
	if err != nil {
		t.Fatal(err)
	}
	if c := o.container; c.Image != "flag/img:1" || c.PullPolicy != spec.PullMissing || strings.Contains(strings.Join(c.Security.AddCapabilities, ","), "NET_ADMIN") ||
		o.g.CacheDir != "/tmp/flag-cache" || len(o.Insecure) != 1 || o.Insecure[0] != "other:5000" {
		t.Errorf("flags do not beat the files: %+v, cache %q, insecure %q", c, o.g.CacheDir, o.Insecure)
	}

	t.Setenv("EPHEM_IMAGE", "env/img:1")
	t.Setenv("EPHEM_CACHE_DIR", "/tmp/env-cache")
	if o, err = validate(t, "pid:42", "--", "true"); err != nil {
		t.Fatal(err)
	}
	if o.container.Image != "env/img:1" || o.g.CacheDir != "/tmp/env-cache" {
		t.Errorf("the environment does not beat the files: image %q, cache %q", o.container.Image, o.g.CacheDir)
	}
}

// TestConfigAuditFlags: audit.log, audit.enabled and record.dir set the
// global flags --audit-log, --no-audit and --record-dir.
func TestConfigAuditFlags(t *testing.T) {
	useConfig(t, userYAML, systemYAML)
	root, code, _, errOut := runRoot(t, "config", "view")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for flag, want := range map[string]string{"audit-log": "/var/log/ephem-test.jsonl", "no-audit": "true", "record-dir": "/var/log/ephem-rec"} {
		f := root.PersistentFlags().Lookup(flag)
		if f == nil {
			t.Errorf("no --%s flag", flag)
		} else if f.Value.String() != want {
			t.Errorf("--%s = %q, want %q", flag, f.Value.String(), want)
		}
	}
	root, _, _, _ = runRoot(t, "config", "view", "--no-audit=false")
	if f := root.PersistentFlags().Lookup("no-audit"); f == nil || f.Value.String() != "false" {
		t.Errorf("--no-audit=false does not beat audit.enabled: false")
	}
}

// TestConfigView: every key with its value and source, as a table and as
// JSON.
func TestConfigView(t *testing.T) {
	user, system := useConfig(t, userYAML, systemYAML)
	t.Setenv("EPHEM_RECORD_DIR", "/tmp/env-rec")
	code, out, errOut := run(t, "config", "view", "--cache-dir", "/tmp/flag-cache")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := map[string][2]string{
		"image":               {"corp/tools:1", system + ":1"},
		"local.image":         {"127.0.0.1:5050/tools/local:1", user + ":3"},
		"kubernetes.image":    {"127.0.0.1:5050/tools/kube:1", user + ":4"},
		"profile":             {"netadmin", user + ":6"},
		"pull":                {"never", user + ":5"},
		"cache-dir":           {"/tmp/flag-cache", "flag --cache-dir"},
		"insecure-registries": {"reg.corp:5000", user + ":7"},
		"audit.log":           {"/var/log/ephem-test.jsonl", system + ":4"},
		"audit.enabled":       {"false", user + ":9"},
		"record.dir":          {"/tmp/env-rec", "env EPHEM_RECORD_DIR"},
	}
	got := map[string][2]string{}
	lines := strings.Split(out, "\n")
	if len(lines) < 12 || strings.Join(strings.Fields(lines[0]), " ") != "KEY VALUE SOURCE" {
		t.Fatalf("output:\n%s", out)
	}
	for _, l := range lines[1:11] {
		f := strings.Fields(l)
		if len(f) < 3 {
			t.Fatalf("row %q: want 3 columns", l)
		}
		got[f[0]] = [2]string{f[1], strings.Join(f[2:], " ")}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("config view (-want +got):\n%s", d)
	}
	if !strings.Contains(out, "user file: "+user+" (read)") || !strings.Contains(out, "system file: "+system+" (read)") {
		t.Errorf("config view does not name the files:\n%s", out)
	}

	useConfig(t, "", "")
	code, out, errOut = run(t, "config", "view", "-o", "json")
	var v struct {
		Files    []struct{ Found bool }
		Settings []config.Setting
	}
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s%s", code, err, out, errOut)
	}
	if len(v.Files) != 2 || v.Files[0].Found || len(v.Settings) != len(config.Keys) {
		t.Fatalf("json: %s", out)
	}
	for _, s := range v.Settings {
		if s.Source != config.SourceDefault || (s.Key == "image" && s.Value != DefaultImage) || (s.Key == "audit.enabled" && s.Value != true) {
			t.Errorf("without files: %+v", s)
		}
	}
}

// TestConfigErrors: a malformed file is one line naming the file and the
// line, exit 78, for every command but version and help; config view
// shows it too.
func TestConfigErrors(t *testing.T) {
	user, _ := useConfig(t, "pull: never\n\nimgae: busybox\n", "")
	wantErr := "ephem: reading " + user + `: line 3: unknown key "imgae" (did you mean "image"?)` + "\n"
	for _, args := range [][]string{{"debug", "pid:42", "--", "true"}, {"config", "view"}, {"images", "ls"}} {
		if code, _, errOut := run(t, args...); code != ExitConfig || errOut != wantErr {
			t.Errorf("%q: exit %d %q, want %d %q", args, code, errOut, ExitConfig, wantErr)
		}
	}
	for _, args := range [][]string{{"version"}, {"help", "debug"}, {"debug", "--help"}, {"completion", "bash"}} {
		if code, _, errOut := run(t, args...); code != 0 {
			t.Errorf("%q with a malformed config: exit %d %q, want 0", args, code, errOut)
		}
	}

	useConfig(t, "local:\n  image: 'Bad Image'\n", "")
	if code, _, errOut := run(t, "debug", "pid:42", "--", "true"); code != ExitConfig || !strings.Contains(errOut, ": line 2: local.image: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("a bad local.image: exit %d %q, want 78 naming the line", code, errOut)
	}
	// --image beats a bad file image: it is never parsed.
	o, err := validate(t, "pid:42", "--image", "busybox", "--", "true")
	if err != nil || o.container.Image != "busybox" {
		t.Errorf("--image with a bad local.image: %v", err)
	}

	t.Setenv("EPHEM_CONFIG", "/nonexistent/ephem-team.yaml")
	configPaths = config.DefaultPaths
	if code, _, errOut := run(t, "config", "view"); code != ExitConfig || errOut != "ephem: reading /nonexistent/ephem-team.yaml: no such file or directory\n" {
		t.Errorf("an absent $EPHEM_CONFIG: exit %d %q, want 78", code, errOut)
	}
}
