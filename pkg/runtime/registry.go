package runtime

import (
	"fmt"
	"io"
	"sync"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
)

// Verbs name the commands a backend may add flags to. VerbGlobal is the
// flags every command has (a backend's connection flags).
const (
	VerbGlobal = ""
	VerbDebug  = "debug"
	VerbList   = "ls"
	VerbAttach = "attach"
	// The verbs beyond the shell, for backends that need a flag there
	// (Kubernetes' --image of the helper debug container).
	VerbCopy    = "cp"
	VerbNS      = "ns"
	VerbCapture = "capture"
	VerbForward = "port-forward"
)

// Registration is one backend in the registry: the target forms it acts on
// and how it is configured and built. A new backend is one package that
// returns its Registration, plus one Register call.
type Registration struct {
	// Name names the backend in messages: "--target is for Kubernetes
	// targets"; "local" or "Kubernetes".
	Name string
	// FlagGroup heads the backend's own flags in --help ("Kubernetes
	// flags"); empty when it has none.
	FlagGroup string
	// Schemes are the reference forms the backend acts on.
	Schemes []target.Scheme
	// Default marks the backend of commands that name no target: ephem ls,
	// ephem attach ID, ephem gc act on this host.
	Default bool
	// NewConfig returns a fresh, unparsed configuration: one per command
	// line, so nothing is shared between two runs.
	NewConfig func() Config
}

// Config is one backend's options for one command line: the flags it adds,
// then, once they are parsed, the backend built from them.
type Config interface {
	// AddFlags adds the backend's flags for verb (VerbGlobal: the flags
	// every command has) to fs.
	AddFlags(verb string, fs *pflag.FlagSet)
	// New builds the backend. It makes no request yet.
	New(env Env) (Backend, error)
}

// TargetImplier is a Config whose flags can stand for a target the command
// line does not name (kubectl's -l SELECTOR).
type TargetImplier interface {
	// ImpliedTarget returns the target verb's flags name, if they do.
	ImpliedTarget(verb string) (target.Ref, bool)
}

// DebugPreparer is a Config with debug flags that shape the container.
type DebugPreparer interface {
	// PrepareDebug checks the backend's debug flags against ref without
	// I/O, fills what they set in c, and returns how the security profile
	// applies. imageGiven says whether the user chose the image.
	PrepareDebug(ref target.Ref, c *spec.Container, imageGiven bool) (profile.Style, error)
}

// Env is what every backend is built with: the flags common to all.
type Env struct {
	// CacheDir is the image cache's directory.
	CacheDir string
	// Pull says how images are fetched for a local debug container.
	Pull image.PullOptions
	// DetachKeys end an interactive attachment without ending the session.
	DetachKeys []byte
	// Log receives status lines and warnings.
	Log io.Writer
}

// Backend is a built backend: a value with one or more of the capabilities
// in capability.go, found by type assertion (see As).
type Backend any

var (
	regMu         sync.RWMutex
	registrations []Registration
)

// Register adds backends to the registry, and their schemes to the target
// table. It panics when a name or a scheme prefix is taken.
func Register(regs ...Registration) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, r := range regs {
		for _, have := range registrations {
			if have.Name == r.Name {
				panic(fmt.Sprintf("runtime: backend %q registered twice", r.Name))
			}
		}
		rows := make([]target.Scheme, len(r.Schemes))
		for i, sc := range r.Schemes {
			sc.Backend = r.Name
			rows[i] = sc
		}
		target.Register(rows...)
		registrations = append(registrations, r)
	}
}

// Registrations returns the registered backends in registration order.
func Registrations() []Registration {
	regMu.RLock()
	defer regMu.RUnlock()
	return append([]Registration(nil), registrations...)
}

// For returns the registration of the backend that acts on ref.
func For(ref target.Ref) (Registration, error) {
	sc, ok := target.Lookup(ref.Scheme)
	if !ok {
		return Registration{}, fmt.Errorf("%w %q: no backend handles %q targets", target.ErrInvalid, ref.Raw, ref.Scheme)
	}
	for _, r := range Registrations() {
		if r.Name == sc.Backend {
			return r, nil
		}
	}
	return Registration{}, fmt.Errorf("%w %q: backend %q is not registered", target.ErrInvalid, ref.Raw, sc.Backend)
}

// Default returns the backend of commands that name no target.
func Default() (Registration, error) {
	for _, r := range Registrations() {
		if r.Default {
			return r, nil
		}
	}
	return Registration{}, fmt.Errorf("%w: no default backend is registered", ErrUnsupported)
}
