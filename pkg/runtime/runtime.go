// Package runtime defines the interface every ephem backend implements: start
// a debug container beside a target, run its session, report its exit code.
// Backends live in subpackages: local (namespaces on this host) and, later,
// kube (pods/ephemeralcontainers).
package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
)

// Sentinel errors shared by backends; callers map them to exit codes.
var (
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
)

// Interface is one backend.
type Interface interface {
	// Debug starts c beside the target t and runs its session on streams
	// until the container's command ends. A command that ran returns an
	// *ExitError carrying its non-zero exit code.
	Debug(ctx context.Context, t target.Ref, c spec.Container, streams session.Streams) error
}

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
