package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// validate runs "ephem debug ARGS" through the real cobra command, with
// Run replaced, and returns the validated options.
func validate(t *testing.T, args ...string) (*DebugOptions, error) {
	t.Helper()
	var opts *DebugOptions
	saved := runDebug
	runDebug = func(_ context.Context, o *DebugOptions) error { opts = o; return nil }
	defer func() { runDebug = saved }()
	g := &GlobalOptions{Streams: Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}}
	root := NewRootCommand(g)
	root.SetArgs(append([]string{"debug"}, args...))
	err := root.ExecuteContext(context.Background())
	return opts, err
}

func TestDebugValidate(t *testing.T) {
	t.Setenv("EPHEM_IMAGE", "")
	o, err := validate(t, "pid:42", "-it", "--profile", "netadmin", "-e", "A=b=c", "--user", "1:2", "-w", "/w", "--", "sh", "-c", "x")
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Container{
		Image: DefaultImage, PullPolicy: spec.PullMissing, Command: []string{"sh", "-c", "x"},
		Env: []spec.EnvVar{{Name: "A", Value: "b=c"}}, User: "1:2", WorkingDir: "/w", Stdin: true, TTY: true,
		SharePID: true, Security: spec.Security{AddCapabilities: []string{"NET_ADMIN", "NET_RAW"}},
	}
	if diff := cmp.Diff(want, o.container, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("container (-want +got):\n%s", diff)
	}
	if o.target.Scheme != "pid" || o.target.Name != "42" {
		t.Errorf("target = %+v", o.target)
	}
	if diff := cmp.Diff([]byte{0x10, 0x11}, o.detach); diff != "" {
		t.Errorf("detach keys (-want +got):\n%s", diff)
	}

	o, err = validate(t, "docker://web", "--arguments-only", "--share-pid=false", "--image", "oci:/x:tag", "--pull", "never", "--", "-v")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"-v"}, o.container.Args); diff != "" || len(o.container.Command) != 0 || o.container.SharePID {
		t.Errorf("arguments-only: %+v", o.container)
	}
}

func TestCopyWithSetImageAddsNoDebugger(t *testing.T) {
	t.Setenv("EPHEM_IMAGE", "")
	o, err := validate(t, "pod/web", "--copy-to", "web-copy", "--set-image", "*=busybox")
	if err != nil {
		t.Fatal(err)
	}
	if o.container.Image != "" {
		t.Errorf("image = %q, want none: --set-image alone changes images, as kubectl", o.container.Image)
	}
	o, err = validate(t, "pod/web", "--copy-to", "web-copy", "--set-image", "*=busybox", "--image", "toolbox")
	if err != nil || o.container.Image != "toolbox" {
		t.Errorf("with --image: %v, %+v", err, o)
	}
}

func TestDebugValidateErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "needs a target"},
		{[]string{"pid:1", "ls"}, "put the command after --"},
		{[]string{"pid:1", "pid:2", "--", "ls"}, "one target only"},
		{[]string{"--", "ls"}, "the target goes before --"},
		{[]string{"pid:x"}, "positive decimal"},
		{[]string{"pid:1", "-t"}, "-t needs -i"},
		{[]string{"pid:1", "--pull", "sometimes"}, "always, missing or never"},
		{[]string{"pid:1", "--profile", "root"}, `unknown profile "root"`},
		{[]string{"pid:1", "-e", "1A=b"}, "NAME=VALUE"},
		{[]string{"pid:1", "--detach-keys", "ctrl-"}, "--detach-keys"},
		{[]string{"pid:1", "--image", "UPPER/case"}, "UPPER/case"},
		{[]string{"pid:1", "--bogus"}, "unknown flag: --bogus"},
	} {
		_, err := validate(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.args, err, tt.want)
			continue
		}
		if exitCodeFor(err) != ExitUsage {
			t.Errorf("%q: exit code %d, want %d", tt.args, exitCodeFor(err), ExitUsage)
		}
	}
}

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{"ctrl-p,ctrl-q": {0x10, 0x11}, "a,ctrl-@": {'a', 0}, "": {}} {
		got, err := parseDetachKeys(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseDetachKeys("alt-x"); !errors.Is(err, errUsage) {
		t.Errorf("alt-x: %v, want a usage error", err)
	}
}

func TestEnvName(t *testing.T) {
	for s, want := range map[string]bool{"A": true, "_": true, "a_B9": true, "PATH": true,
		"": false, "9A": false, "A-B": false, "A B": false, "Ä": false, "A=": false} {
		if got := envName(s); got != want {
			t.Errorf("envName(%q) = %v, want %v", s, got, want)
		}
	}
}
