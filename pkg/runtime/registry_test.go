package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
)

type noFlags struct{ b runtime.Backend }

func (noFlags) AddFlags(string, *pflag.FlagSet)            {}
func (c noFlags) New(runtime.Env) (runtime.Backend, error) { return c.b, nil }

type lister struct{}

func (lister) List(context.Context, target.Ref) ([]runtime.Session, error) { return nil, nil }

func TestRegistry(t *testing.T) {
	runtime.Register(runtime.Registration{Name: "regtest", NewConfig: func() runtime.Config { return noFlags{lister{}} },
		Schemes: []target.Scheme{{Name: "regtest", Prefixes: []string{"regtest:"}, Example: "regtest:N", Parse: target.ParsePID}}})
	ref, err := target.Parse("regtest:5")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := runtime.For(ref)
	if err != nil || reg.Name != "regtest" {
		t.Fatalf("For(%v) = %q, %v", ref, reg.Name, err)
	}
	if sc, _ := target.Lookup("regtest"); sc.Backend != "regtest" {
		t.Errorf("the scheme row names backend %q, want regtest", sc.Backend)
	}
	if _, err := runtime.For(target.Ref{Scheme: "nope", Raw: "nope"}); !errors.Is(err, target.ErrInvalid) {
		t.Errorf("For an unknown scheme = %v, want ErrInvalid", err)
	}
	if _, err := runtime.Default(); !errors.Is(err, runtime.ErrUnsupported) {
		t.Errorf("Default with none registered = %v, want ErrUnsupported", err)
	}
	b, _ := reg.NewConfig().New(runtime.Env{})
	if _, err := runtime.As[runtime.Lister](b, ref, "ls"); err != nil {
		t.Errorf("As[Lister] = %v", err)
	}
	_, err = runtime.As[runtime.Capturer](b, ref, "capture")
	if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "regtest: targets do not support capture yet") {
		t.Errorf("As[Capturer] = %v, want ErrUnsupported naming the form and verb", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a backend name twice did not panic")
		}
	}()
	runtime.Register(runtime.Registration{Name: "regtest"})
}

func TestNewKind(t *testing.T) {
	k := runtime.NewKind(runtime.ErrConfig, "kubeconfig")
	if err := errors.Join(errors.New("x"), k); !errors.Is(err, runtime.ErrConfig) || k.Error() != "kubeconfig" {
		t.Errorf("NewKind: %v (is ErrConfig: %v)", k, errors.Is(err, runtime.ErrConfig))
	}
}
