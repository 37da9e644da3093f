package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Sentinel errors callers branch on.
var (
	// ErrInvalid marks a malformed reference or an unknown scheme.
	ErrInvalid = errors.New("invalid target")
	// ErrUnknownScheme marks, with ErrInvalid, a reference of a form no
	// registered backend handles.
	ErrUnknownScheme = errors.New("unknown scheme")
	// ErrNotFound marks a target that does not exist or is not running.
	ErrNotFound = errors.New("target not found")
	// ErrUnreachable marks a runtime API that could not be reached.
	ErrUnreachable = errors.New("runtime unreachable")
)

// Scheme names: the value of Ref.Scheme for each reference form. The rows
// that parse and resolve them are registered by their backends.
const (
	SchemePID         = "pid"
	SchemeDocker      = "docker"
	SchemePodman      = "podman"
	SchemeImage       = "image"
	SchemeSession     = "session"
	SchemePod         = "pod"
	SchemeNode        = "node"
	SchemeDeployment  = "deployment"
	SchemeStatefulSet = "statefulset"
	SchemeDaemonSet   = "daemonset"
	SchemeReplicaSet  = "replicaset"
	SchemeJob         = "job"
	SchemeCRI         = "cri"
)

// Ref is a parsed target reference.
type Ref struct {
	// Scheme is the registered scheme name: SchemePID, SchemePod, ...
	Scheme string
	// Namespace is the Kubernetes namespace, when the reference names one.
	Namespace string
	// Name is the process ID, container name or ID, or object name.
	Name string
	// Container names a container inside a pod, when given.
	Container string
	// Raw is the reference as the user wrote it.
	Raw string
}

// PID returns the process ID of a "pid" reference.
func (r Ref) PID() int {
	n, _ := strconv.Atoi(r.Name)
	return n
}

func (r Ref) String() string { return r.Raw }

// Form names the reference's form for messages: its scheme's first prefix
// ("docker://", "pod/"), else its example ("NAME"), else the scheme's name.
func (r Ref) Form() string {
	sc, ok := Lookup(r.Scheme)
	switch {
	case ok && len(sc.Prefixes) > 0 && sc.Prefixes[0] != "":
		return sc.Prefixes[0]
	case ok && sc.Example != "":
		return sc.Example
	}
	return r.Scheme
}

// Scheme is one row of the reference table: how a form is written, parsed
// and, for host processes, resolved. Backends register their rows through
// runtime.Register, so parsing and resolving a form live in one place.
type Scheme struct {
	// Name is the value Parse puts in Ref.Scheme.
	Name string
	// Prefixes introduce the form ("pod/", "pods/", "po/"); the first is
	// the canonical one. The empty prefix makes a catch-all row: Parse
	// tries it only after every prefixed row, and only for a reference
	// with no ':' or '/' (a bare NAME).
	Prefixes []string
	// Example is shown in errors and help ("pod/NAME[/CONTAINER]").
	Example string
	// Hidden rows are left out of Supported.
	Hidden bool
	// Parse fills Name, Namespace and Container from what follows the prefix.
	Parse func(r *Ref, rest string) error
	// Resolve finds the host process a reference names; nil for forms
	// whose backend resolves them itself (pods, nodes).
	Resolve func(ctx context.Context, r Ref) (Process, error)
	// Backend names the registered backend that acts on the form.
	Backend string
}

var (
	mu      sync.RWMutex
	schemes []Scheme
)

// Register adds rows to the reference table. It panics on a prefix that
// another row already has: two backends cannot claim one form.
func Register(rows ...Scheme) {
	mu.Lock()
	defer mu.Unlock()
	for _, row := range rows {
		for _, p := range row.Prefixes {
			for _, have := range schemes {
				for _, q := range have.Prefixes {
					if p == q {
						panic(fmt.Sprintf("target: prefix %q registered twice (%s and %s)", p, have.Name, row.Name))
					}
				}
			}
		}
		schemes = append(schemes, row)
	}
}

// Lookup returns the row of the scheme called name.
func Lookup(name string) (Scheme, bool) {
	mu.RLock()
	defer mu.RUnlock()
	for _, sc := range schemes {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scheme{}, false
}

// maxRef bounds a target reference (a pod name is at most 253 bytes).
const maxRef = 1024

// Parse parses a target reference: by the row whose prefix it begins
// with, else (a bare word with no ':' or '/') by a catch-all row.
func Parse(s string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("%w: empty target: use %s", ErrInvalid, Supported())
	}
	if len(s) > maxRef {
		return Ref{}, fmt.Errorf("%w: a target of %d bytes is too long (at most %d): use %s", ErrInvalid, len(s), maxRef, Supported())
	}
	mu.RLock()
	rows := schemes
	mu.RUnlock()
	if r, ok, err := parseRows(s, rows, false); ok {
		return r, err
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return Ref{}, fmt.Errorf("%w %q: write a process as pid:%d", ErrInvalid, s, n)
	}
	if !strings.ContainsAny(s, ":/") {
		if r, ok, err := parseRows(s, rows, true); ok {
			return r, err
		}
	}
	return Ref{}, fmt.Errorf("%w %q: %w; supported: %s", ErrInvalid, s, ErrUnknownScheme, Supported())
}

// parseRows parses s by the first of rows with a prefix s begins with:
// non-empty prefixes, or (catchAll) the empty one. The bool says a row
// took s.
func parseRows(s string, rows []Scheme, catchAll bool) (Ref, bool, error) {
	for _, sc := range rows {
		for _, p := range sc.Prefixes {
			rest, has := strings.CutPrefix(s, p)
			if !has || (p == "") != catchAll {
				continue
			}
			r := Ref{Scheme: sc.Name, Raw: s}
			if err := sc.Parse(&r, rest); err != nil {
				return Ref{}, true, fmt.Errorf("%w %q: %w (expected %s)", ErrInvalid, s, err, sc.Example)
			}
			return r, true, nil
		}
	}
	return Ref{}, false, nil
}

// Supported lists the supported reference forms, for errors and help:
// the prefixed forms, then the catch-all ones (tried last).
func Supported() string {
	mu.RLock()
	defer mu.RUnlock()
	var ex, last []string
	for _, sc := range schemes {
		switch {
		case sc.Hidden || sc.Example == "":
		case isCatchAll(sc):
			last = append(last, sc.Example)
		default:
			ex = append(ex, sc.Example)
		}
	}
	return strings.Join(append(ex, last...), ", ")
}

// isCatchAll reports whether sc has the empty prefix.
func isCatchAll(sc Scheme) bool {
	for _, p := range sc.Prefixes {
		if p == "" {
			return true
		}
	}
	return false
}

// Resolve returns the host process r names, by its scheme's row.
func Resolve(ctx context.Context, r Ref) (Process, error) {
	sc, ok := Lookup(r.Scheme)
	if !ok || sc.Resolve == nil {
		return Process{}, fmt.Errorf("%w %q: %s targets are not host processes", ErrInvalid, r.Raw, r.Form())
	}
	return sc.Resolve(ctx, r)
}

// ParsePID is the Parse of "pid:N": a positive decimal process ID.
func ParsePID(r *Ref, rest string) error {
	n, err := strconv.Atoi(rest)
	if err != nil || n <= 0 || strconv.Itoa(n) != rest {
		return errors.New("a process ID is a positive decimal number")
	}
	r.Name = rest
	return nil
}

// ParseContainer is the Parse of a runtime's container name or ID.
func ParseContainer(r *Ref, rest string) error {
	if rest == "" {
		return errors.New("missing container name or ID")
	}
	if strings.ContainsAny(rest, "/ \t\n?#%") {
		return errors.New("a container name or ID has no '/', spaces, '?', '#' or '%'")
	}
	r.Name = rest
	return nil
}
