package cli

import (
	"fmt"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
)

// Flag annotations: which backend added a flag, and the --help heading it
// goes under.
const (
	annOwner = "ephem/backend"
	annGroup = "ephem/group"
)

// backend is one registered backend with its configuration for this
// command line.
type backend struct {
	reg runtime.Registration
	cfg runtime.Config
}

// backendSet is every registered backend's configuration for one command
// line. The CLI knows backends only through it.
type backendSet []backend

func newBackendSet() backendSet {
	var s backendSet
	for _, r := range runtime.Registrations() {
		s = append(s, backend{reg: r, cfg: r.NewConfig()})
	}
	return s
}

// addFlags adds every backend's flags for verb to fs, each marked with its
// backend and help heading.
func (s backendSet) addFlags(verb string, fs *pflag.FlagSet) {
	for _, b := range s {
		own := pflag.NewFlagSet(b.reg.Name, pflag.ContinueOnError)
		b.cfg.AddFlags(verb, own)
		own.VisitAll(func(f *pflag.Flag) {
			if f.Annotations == nil {
				f.Annotations = map[string][]string{}
			}
			if verb != runtime.VerbGlobal {
				f.Annotations[annOwner] = []string{b.reg.Name}
			}
			if b.reg.FlagGroup != "" {
				f.Annotations[annGroup] = []string{b.reg.FlagGroup}
			}
			fs.AddFlag(f)
		})
	}
}

// lookup returns the backend that acts on ref.
func (s backendSet) lookup(ref target.Ref) (backend, error) {
	reg, err := runtime.For(ref)
	if err != nil {
		return backend{}, err
	}
	return s.named(reg.Name)
}

// fallback returns the default backend, for commands that name no target.
func (s backendSet) fallback() (backend, error) {
	reg, err := runtime.Default()
	if err != nil {
		return backend{}, err
	}
	return s.named(reg.Name)
}

func (s backendSet) named(name string) (backend, error) {
	for _, b := range s {
		if b.reg.Name == name {
			return b, nil
		}
	}
	return backend{}, fmt.Errorf("%w: backend %q has no configuration", runtime.ErrUnsupported, name)
}

// forTarget parses arg as a target and returns it with its backend,
// refusing flags of another backend.
func (s backendSet) forTarget(arg string, fs *pflag.FlagSet) (target.Ref, backend, error) {
	ref, err := target.Parse(arg)
	if err != nil {
		return target.Ref{}, backend{}, err
	}
	b, err := s.lookup(ref)
	if err != nil {
		return target.Ref{}, backend{}, err
	}
	return ref, b, checkOwnFlags(fs, b, ref)
}

// implied returns the target a backend's flags stand for when the command
// line names none (-l SELECTOR).
func (s backendSet) implied(verb string) (target.Ref, bool) {
	for _, b := range s {
		if ti, ok := b.cfg.(runtime.TargetImplier); ok {
			if ref, ok := ti.ImpliedTarget(verb); ok {
				return ref, true
			}
		}
	}
	return target.Ref{}, false
}

// checkOwnFlags refuses a flag of another backend than b, given for ref:
// "--copy-to is for Kubernetes targets, not pid:42".
func checkOwnFlags(fs *pflag.FlagSet, b backend, ref target.Ref) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if owner := f.Annotations[annOwner]; err == nil && len(owner) == 1 && owner[0] != b.reg.Name {
			err = usageError("--%s is for %s targets, not %s", f.Name, owner[0], ref)
		}
	})
	return err
}

// capability builds backend b with the command's common flags and returns
// its capability T, which verb needs for ref.
func capability[T any](g *GlobalOptions, b backend, ref target.Ref, verb string, detach []byte, pull image.PullOptions) (T, error) {
	var zero T
	be, err := b.cfg.New(runtime.Env{CacheDir: g.CacheDir, Pull: pull, DetachKeys: detach, Log: g.Streams.Err})
	if err != nil {
		return zero, err
	}
	return runtime.As[T](be, ref, verb)
}
