package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/cli"
	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
)

// The conformance test: a backend registered here, under test:// and
// test-noattach://, runs debug, ls and attach through the real CLI (cobra,
// flags, help, exit codes, output) with no change to internal/cli.

// fakeLog records what the fakes were asked, for the assertions.
var fakeLog struct {
	sync.Mutex
	calls []string
}

func record(format string, args ...any) {
	fakeLog.Lock()
	defer fakeLog.Unlock()
	fakeLog.calls = append(fakeLog.calls, fmt.Sprintf(format, args...))
}

func init() {
	runtime.Register(
		runtime.Registration{Name: "test", FlagGroup: "Test flags", NewConfig: func() runtime.Config { return &fakeConfig{} },
			Schemes: []target.Scheme{{Name: "test", Prefixes: []string{"test://"}, Example: "test://NAME", Parse: target.ParseContainer}}},
		runtime.Registration{Name: "test-noattach", NewConfig: func() runtime.Config { return &fakeConfig{noAttach: true} },
			Schemes: []target.Scheme{{Name: "test-noattach", Prefixes: []string{"test-noattach://"}, Example: "test-noattach://NAME", Parse: target.ParseContainer}}},
	)
}

// fakeConfig adds one debug flag, --fake-mode, and builds a fake.
type fakeConfig struct {
	mode     string
	noAttach bool
}

func (c *fakeConfig) AddFlags(verb string, fs *pflag.FlagSet) {
	if verb == runtime.VerbDebug && !c.noAttach {
		fs.StringVar(&c.mode, "fake-mode", "", "how the fake debugger behaves")
	}
}

func (c *fakeConfig) PrepareDebug(_ target.Ref, ctr *spec.Container, _ bool) (profile.Style, error) {
	if c.mode == "bad" {
		return 0, fmt.Errorf("%w: --fake-mode bad is refused", runtime.ErrUsage)
	}
	ctr.Env = append(ctr.Env, spec.EnvVar{Name: "MODE", Value: c.mode})
	return profile.Ephemeral, nil
}

func (c *fakeConfig) New(env runtime.Env) (runtime.Backend, error) {
	f := &fake{mode: c.mode, env: env}
	if c.noAttach {
		return &fakeNoAttach{f}, nil
	}
	return f, nil
}

type fake struct {
	mode string
	env  runtime.Env
}

func (f *fake) Debug(_ context.Context, t target.Ref, c spec.Container, s session.Streams) error {
	record("debug %s %s image=%s caps=%v env=%v", t.Name, strings.Join(c.Command, " "), c.Image, c.Security.AddCapabilities, c.Env)
	fmt.Fprintf(s.Out, "hello from %s\n", t.Name)
	switch f.mode {
	case "fanout":
		return errors.Join(
			fmt.Errorf("pod a: %w", fmt.Errorf("%w: pull of x", runtime.ErrImagePull)),
			fmt.Errorf("pod b: %w", &runtime.ExitError{Code: 3}),
			fmt.Errorf("pod c: %w", runtime.ErrTimeout))
	case "exit":
		return &runtime.ExitError{Code: 7}
	}
	return nil
}

func (f *fake) List(_ context.Context, t target.Ref) ([]runtime.Session, error) {
	code := 4
	return []runtime.Session{{ID: "test://" + t.Name + "/s1", Target: t.Raw, Image: "busybox", State: "Terminated",
		Started: time.Now().Add(-3 * time.Minute), ExitCode: &code, Command: []string{"sh"}}}, nil
}

func (f *fake) Attach(_ context.Context, t target.Ref, tty bool, _ session.Streams) error {
	record("attach %s tty=%v keys=%v", t.Name, tty, f.env.DetachKeys)
	return &runtime.ExitError{Code: 4}
}

// fakeNoAttach lacks Attacher (and Lister).
type fakeNoAttach struct{ f *fake }

func (f *fakeNoAttach) Debug(ctx context.Context, t target.Ref, c spec.Container, s session.Streams) error {
	return f.f.Debug(ctx, t, c, s)
}

func execute(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	fakeLog.Lock()
	fakeLog.calls = nil
	fakeLog.Unlock()
	code := cli.Execute(context.Background(), args, cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func calls() string {
	fakeLog.Lock()
	defer fakeLog.Unlock()
	return strings.Join(fakeLog.calls, "\n")
}

func TestConformanceDebug(t *testing.T) {
	t.Setenv("EPHEM_IMAGE", "")
	code, out, errOut := execute("debug", "test://web", "--profile", "netadmin", "--fake-mode", "exit", "--", "wget", "-qO-", "localhost")
	if code != 7 || out != "hello from web\n" || errOut != "" {
		t.Errorf("debug: exit %d out %q err %q, want 7 and the fake's output", code, out, errOut)
	}
	if want := "debug web wget -qO- localhost image=busybox:latest caps=[NET_ADMIN NET_RAW] env=[{MODE exit}]"; calls() != want {
		t.Errorf("the fake was asked:\n%s\nwant:\n%s", calls(), want)
	}
	// A backend's flags are its own: refused for another backend's target,
	// listed under their heading in --help.
	if code, _, errOut := execute("debug", "test-noattach://web", "--fake-mode", "x", "--", "true"); code != 64 ||
		!strings.Contains(errOut, "--fake-mode is for test targets, not test-noattach://web") {
		t.Errorf("a foreign flag: exit %d %q, want 64 naming it", code, errOut)
	}
	if code, _, errOut := execute("debug", "test://web", "--fake-mode", "bad"); code != 64 || !strings.Contains(errOut, "ephem: --fake-mode bad is refused\n") {
		t.Errorf("PrepareDebug's refusal: exit %d %q, want 64 and its message", code, errOut)
	}
	_, help, _ := execute("debug", "--help")
	if !strings.Contains(help, "\nTest flags:\n      --fake-mode string") || !strings.Contains(help, "Kubernetes flags:") ||
		strings.Index(help, "--fake-mode") < strings.Index(help, "--profile") {
		t.Errorf("--help does not list the fake's flag under its own heading after the common ones:\n%s", help)
	}
	if !strings.Contains(help, "test://NAME") {
		t.Errorf("--help does not list the fake's target form")
	}
}

// TestConformanceFanOut: errors.Join of several failures prints each and
// exits with the first one's code.
func TestConformanceFanOut(t *testing.T) {
	code, _, errOut := execute("debug", "test://many", "--fake-mode", "fanout", "--", "true")
	if code != 67 {
		t.Errorf("exit %d, want the first failure's 67 (image pull)", code)
	}
	want := "ephem: pod a: image pull failed: pull of x\nephem: pod c: timed out\n"
	if errOut != want {
		t.Errorf("stderr %q, want %q (the command's own exit code prints nothing)", errOut, want)
	}
}

func TestConformanceListAndAttach(t *testing.T) {
	code, out, errOut := execute("ls", "test://web")
	if code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, "test://web/s1") ||
		!strings.Contains(out, "Terminated") || !strings.Contains(out, " 3m ") {
		t.Errorf("ls: exit %d out %q err %q", code, out, errOut)
	}
	code, _, errOut = execute("attach", "test://web", "--detach-keys", "ctrl-a")
	if code != 4 || errOut != "" || calls() != "attach web tty=false keys=[1]" {
		t.Errorf("attach: exit %d err %q calls %q, want 4 from the fake", code, errOut, calls())
	}
	for _, verb := range []string{"attach", "ls"} {
		code, _, errOut = execute(verb, "test-noattach://web")
		if want := "ephem: unsupported: test-noattach:// targets do not support " + verb + " yet\n"; code != 69 || errOut != want {
			t.Errorf("%s without the capability: exit %d %q, want 69 %q", verb, code, errOut, want)
		}
	}
}
