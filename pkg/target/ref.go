package target

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors callers branch on.
var (
	// ErrInvalid marks a malformed reference or an unknown scheme.
	ErrInvalid = errors.New("invalid target")
	// ErrNotFound marks a target that does not exist or is not running.
	ErrNotFound = errors.New("target not found")
	// ErrUnreachable marks a runtime API that could not be reached.
	ErrUnreachable = errors.New("runtime unreachable")
)

// Kind says which backend acts on a reference.
type Kind int

// Backend kinds.
const (
	// Local targets are processes on this host.
	Local Kind = iota
	// Kubernetes targets are pods, workloads and nodes of a cluster.
	Kubernetes
)

// Ref is a parsed target reference.
type Ref struct {
	// Scheme is the registered scheme name: "pid", "docker", "pod", ...
	Scheme string
	// Kind is the backend kind the scheme belongs to.
	Kind Kind
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

// scheme is one row of the reference table.
type scheme struct {
	name    string
	kind    Kind
	example string
	// prefix is what introduces the scheme in a reference.
	prefix string
	parse  func(r *Ref, rest string) error
	// hidden rows are aliases left out of Supported.
	hidden bool
}

var schemes = []scheme{
	{name: "pid", kind: Local, example: "pid:4242", prefix: "pid:", parse: parsePID},
	{name: "docker", kind: Local, example: "docker://NAME|ID", prefix: "docker://", parse: parseContainer},
}

// RegisterScheme adds a scheme to the parser: prefix introduces it ("pod/",
// "containerd://"), example is shown in errors, and parse fills Name,
// Namespace and Container from what follows the prefix. Backends call it
// from their package's init.
func RegisterScheme(name string, kind Kind, prefix, example string, parse func(r *Ref, rest string) error) {
	schemes = append(schemes, scheme{name: name, kind: kind, example: example, prefix: prefix, parse: parse})
}

// maxRef bounds a target reference (a pod name is at most 253 bytes).
const maxRef = 1024

// Parse parses a target reference.
func Parse(s string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("%w: empty target: use %s", ErrInvalid, Supported())
	}
	if len(s) > maxRef {
		return Ref{}, fmt.Errorf("%w: a target of %d bytes is too long (at most %d): use %s", ErrInvalid, len(s), maxRef, Supported())
	}
	for _, sc := range schemes {
		rest, ok := strings.CutPrefix(s, sc.prefix)
		if !ok {
			continue
		}
		r := Ref{Scheme: sc.name, Kind: sc.kind, Raw: s}
		if err := sc.parse(&r, rest); err != nil {
			return Ref{}, fmt.Errorf("%w %q: %w (expected %s)", ErrInvalid, s, err, sc.example)
		}
		return r, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return Ref{}, fmt.Errorf("%w %q: write a process as pid:%d", ErrInvalid, s, n)
	}
	return Ref{}, fmt.Errorf("%w %q: unknown scheme; supported: %s", ErrInvalid, s, Supported())
}

// Supported lists the supported reference forms, for errors and help.
func Supported() string {
	ex := make([]string, 0, len(schemes))
	for _, sc := range schemes {
		if !sc.hidden {
			ex = append(ex, sc.example)
		}
	}
	return strings.Join(ex, ", ")
}

func parsePID(r *Ref, rest string) error {
	n, err := strconv.Atoi(rest)
	if err != nil || n <= 0 || strconv.Itoa(n) != rest {
		return errors.New("a process ID is a positive decimal number")
	}
	r.Name = rest
	return nil
}

func parseContainer(r *Ref, rest string) error {
	if rest == "" {
		return errors.New("missing container name or ID")
	}
	if strings.ContainsAny(rest, "/ \t\n?#%") {
		return errors.New("a container name or ID has no '/', spaces, '?', '#' or '%'")
	}
	r.Name = rest
	return nil
}
