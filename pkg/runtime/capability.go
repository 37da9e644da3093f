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

// CopyOptions say how ephem cp copies.
type CopyOptions struct {
	// Archive keeps the owners (uid and gid) the tar stream records (-a);
	// otherwise what is written belongs to the target's root.
	Archive bool
	// FollowLink copies what a symbolic link source names rather than the
	// link itself (-L).
	FollowLink bool
}

// Copier copies files out of and into a target's filesystem (ephem cp),
// confined to the target's root: no symbolic link or ".." reaches outside.
type Copier interface {
	// CopyFrom writes path, inside t's root, to w as a tar stream whose
	// top entry is path's base name.
	CopyFrom(ctx context.Context, t target.Ref, path string, o CopyOptions, w io.Writer) error
	// CopyTo unpacks the tar stream r at path inside t's root: into path
	// when it is a directory, else as path itself (the stream's one top
	// entry renamed).
	CopyTo(ctx context.Context, t target.Ref, path string, o CopyOptions, r io.Reader) error
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

// PortPair is one forward: a local address and port to listen on, and the
// host and port that what arrives there is relayed to, as the target sees
// them.
type PortPair struct {
	// Protocol is "tcp" (also when empty) or "udp".
	Protocol string
	// LocalAddr is the IP address to listen on ("": 127.0.0.1).
	LocalAddr string
	// Local is the local port; 0 lets the system choose a free one.
	Local uint16
	// RemoteHost is the IP address to reach from inside the target
	// ("": 127.0.0.1, the target's own loopback).
	RemoteHost string
	// Remote is the port to reach.
	Remote uint16
}

// Forwarder forwards local ports into a target's network namespace
// (ephem port-forward).
type Forwarder interface {
	// Forward listens on every pair's local address and relays each TCP
	// connection, or each client's UDP datagrams, to the pair's remote
	// address as t sees it. It writes one line per forward to log once
	// every listener is up, and one per connection that fails, and
	// returns when ctx ends with every listener and connection closed.
	Forward(ctx context.Context, t target.Ref, ports []PortPair, log io.Writer) error
}

// Namespace is one namespace type of a target, as Inspector reports it:
// the host's (PID 1's), the target's and the debug container's, each as
// its /proc/PID/ns link reads ("net:[4026531840]").
type Namespace struct {
	// Type is "net", "pid", "mnt", ...
	Type string `json:"type"`
	// Host is the host's namespace (see NamespaceReport.HostFrom).
	Host string `json:"host"`
	// Target is the target's namespace.
	Target string `json:"target"`
	// Debug is the debug container's, "" when it gets a new one.
	Debug string `json:"debug"`
	// Shared says the debug container shares the target's.
	Shared bool `json:"shared"`
}

// NamespaceReport is what ephem ns shows about a target.
type NamespaceReport struct {
	// Target is the target as the user named it.
	Target string `json:"target"`
	// PID is the target's process ID on the host (0: not a host process).
	PID int `json:"pid,omitempty"`
	// HostFrom says whose namespaces are the host's: "PID 1", or "ephem"
	// where PID 1's cannot be read (a sandbox that hides them).
	HostFrom string `json:"hostFrom"`
	// Namespaces are the namespace types, sorted by name.
	Namespaces []Namespace `json:"namespaces"`
	// Init is the command line of PID 1 in the target's PID namespace.
	Init []string `json:"init"`
	// UIDMap and GIDMap are the target's ID maps, one "inside outside
	// count" line each.
	UIDMap []string `json:"uidMap"`
	GIDMap []string `json:"gidMap"`
	// CapEff is the target's effective capability set, in hexadecimal.
	CapEff string `json:"capEff"`
	// Seccomp is the target's seccomp mode: disabled, strict or filter.
	Seccomp string `json:"seccomp"`
	// Cgroup lists the target's cgroups as /proc/PID/cgroup does.
	Cgroup []string `json:"cgroup"`
	// Root is the target's root directory as its /proc/PID/root link reads.
	Root string `json:"root"`
}

// SeccompMode names the Seccomp field of /proc/PID/status: disabled,
// strict, filter, or unknown when the kernel does not report it.
func SeccompMode(field string) string {
	switch field {
	case "0":
		return "disabled"
	case "1":
		return "strict"
	case "2":
		return "filter"
	case "":
		return "unknown"
	}
	return field
}

// Inspector reports a target's namespaces (ephem ns).
type Inspector interface {
	// Inspect returns what t runs in, and what a debug container beside it
	// would share, without starting one.
	Inspect(ctx context.Context, t target.Ref) (*NamespaceReport, error)
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

// Completion is one shell completion candidate: the word to insert and a
// short description the shell may show beside it.
type Completion struct {
	Value       string
	Description string
}

// TargetCompleter lists the targets a backend sees, for shell completion
// (ephem __complete). It must be fast and bounded by ctx: a source that does
// not answer in time is left out, not waited for.
type TargetCompleter interface {
	// CompleteTargets returns the targets whose reference starts with
	// toComplete, as the user would type them (pid:42, docker://web,
	// pod/web).
	CompleteTargets(ctx context.Context, toComplete string) ([]Completion, error)
}

// FlagCompleter completes the values of a backend's own flags (-n
// NAMESPACE), for shell completion.
type FlagCompleter interface {
	// CompleteFlag returns the values of flag name that start with
	// toComplete; nil when the backend does not complete that flag.
	CompleteFlag(ctx context.Context, name, toComplete string) ([]Completion, error)
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
