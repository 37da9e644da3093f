// Package runtime is ephem's registry of backends and the small interfaces
// they implement. A backend registers the target forms it acts on and a
// Config that adds its flags and builds it (registry.go); each verb finds
// the capability it needs by type assertion (capability.go): Debugger,
// Lister, Attacher, Cleaner, Copier, Capturer, Forwarder, Inspector.
// Backends live in subpackages: local (namespaces on this host) and kube
// (pods/ephemeralcontainers); package backends registers them.
package runtime

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by backends; callers map them to exit codes.
var (
	// ErrUsage marks a bad flag, argument or reference: the user's to fix.
	ErrUsage = errors.New("usage")
	// ErrUnsupported marks a host or cluster lacking a feature ephem needs.
	ErrUnsupported = errors.New("unsupported")
	// ErrPermission marks missing privileges.
	ErrPermission = errors.New("permission denied")
	// ErrTargetGone marks a target that exited while the session ran.
	ErrTargetGone = errors.New("target exited")
	// ErrOS marks a failed operating-system call.
	ErrOS = errors.New("system call failed")
	// ErrInvalidSpec marks a container spec the backend cannot honour
	// (an unknown capability, root under a non-root profile).
	ErrInvalidSpec = errors.New("invalid container spec")
	// ErrBusy marks a session another client is attached to.
	ErrBusy = errors.New("session busy")
	// ErrConfig marks a backend configuration that cannot be used (no
	// kubeconfig).
	ErrConfig = errors.New("configuration")
	// ErrImagePull marks a debug image the runtime could not pull.
	ErrImagePull = errors.New("image pull failed")
	// ErrCreate marks a debug container the runtime could not create.
	ErrCreate = errors.New("container creation failed")
	// ErrTimeout marks a debug container that did not start in time.
	ErrTimeout = errors.New("timed out")
)

// ExitError reports the debug command's own non-zero exit code.
type ExitError struct {
	// Code is the command's exit code, 128+N when signal N killed it.
	Code int
	// Err, when set, says why the command could not run (126, 127).
	Err error
}

func (e *ExitError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("command exited with code %d", e.Code)
}

// Unwrap returns the reason the command could not run, if any.
func (e *ExitError) Unwrap() error { return e.Err }

// NewKind returns a backend's own sentinel error: it reads text and matches
// base with errors.Is, so the CLI maps it by base alone.
func NewKind(base error, text string) error { return &kindError{text: text, base: base} }

type kindError struct {
	text string
	base error
}

func (e *kindError) Error() string { return e.text }
func (e *kindError) Unwrap() error { return e.base }
