package runtime

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
)

// The capabilities a backend may have, one small interface each, found by
// type assertion as go-containerregistry's partial package does. A verb
// asks As for the one it needs; a backend without it is "not supported".

// Debugger starts debug containers.
type Debugger interface {
	// Debug starts c beside the target t and runs its session on streams
	// until the container's command ends. A command that ran returns an
	// *ExitError carrying its non-zero exit code.
	Debug(ctx context.Context, t target.Ref, c spec.Container, streams session.Streams) error
}

// Lister lists debug sessions.
type Lister interface {
	// List returns the sessions of t, or every session the backend sees
	// when t is the zero Ref.
	List(ctx context.Context, t target.Ref) ([]Session, error)
}

// Attacher reattaches to a session.
type Attacher interface {
	// Attach connects streams to the session t names (as List gives its
	// ID) until it ends or the user detaches; tty asks for a terminal.
	Attach(ctx context.Context, t target.Ref, tty bool, streams session.Streams) error
}

// Cleaner removes what interrupted runs left (ephem gc).
type Cleaner interface {
	// GC removes the records of sessions that ended.
	GC(ctx context.Context) error
}

// Copier copies files out of and into a target's filesystem (ephem cp).
type Copier interface {
	// CopyFrom writes path, inside t's root, to w as a tar stream.
	CopyFrom(ctx context.Context, t target.Ref, path string, w io.Writer) error
	// CopyTo unpacks the tar stream r at path inside t's root.
	CopyTo(ctx context.Context, t target.Ref, path string, r io.Reader) error
}

// CaptureOptions are the inputs of a packet capture.
type CaptureOptions struct {
	// Interface is the interface to capture on ("any" for all).
	Interface string
	// Filter is a filter in tcpdump's syntax.
	Filter string
	// Count stops after this many packets (0: no limit).
	Count int
	// Duration stops after this long (0: no limit).
	Duration time.Duration
}

// Capturer captures a target's packets (ephem capture).
type Capturer interface {
	// Capture writes the packets of t's network namespace to w as pcap.
	Capture(ctx context.Context, t target.Ref, o CaptureOptions, w io.Writer) error
}

// PortPair maps a local port to a port on the target's loopback.
type PortPair struct {
	Local, Remote uint16
}

// Forwarder forwards local ports into a target's network namespace.
type Forwarder interface {
	// Forward listens on the local ports until ctx ends.
	Forward(ctx context.Context, t target.Ref, ports []PortPair, log io.Writer) error
}

// Namespace is one namespace of a target, as Inspector reports it.
type Namespace struct {
	// Type is "net", "pid", "mnt", ...
	Type string
	// ID is the namespace's identity ("net:[4026531840]").
	ID string
	// Shared says the debug container would share it.
	Shared bool
}

// Inspector reports a target's namespaces (ephem ns).
type Inspector interface {
	// Inspect returns t's namespaces.
	Inspect(ctx context.Context, t target.Ref) ([]Namespace, error)
}

// Session is one debug session, as ephem ls shows it.
type Session struct {
	// ID is what ephem attach takes to reattach.
	ID string
	// Target is what the session debugs.
	Target string
	// Image is the debug image.
	Image string
	// Command is the debug command, when known.
	Command []string
	// State is "Running", "Terminated" or why it waits.
	State string
	// Started is when the session started (zero: not yet).
	Started time.Time
	// ExitCode is the command's exit code once it ended.
	ExitCode *int
}

// As returns b's capability T, which verb needs, or an ErrUnsupported
// error naming the target form: "docker:// targets do not support capture
// yet" (exit 69).
func As[T any](b Backend, ref target.Ref, verb string) (T, error) {
	if c, ok := b.(T); ok {
		return c, nil
	}
	var zero T
	return zero, fmt.Errorf("%w: %s targets do not support %s yet", ErrUnsupported, ref.Form(), verb)
}
