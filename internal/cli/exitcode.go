package cli

import (
	"errors"
	"io/fs"
	"reflect"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/sys/unix"
)

// Exit codes of ephem's own failures. They follow sysexits(3) so that they
// stay clear of the debugged command's usual codes (0, 1, 2, 126, 127 and
// 128+signal), which ephem passes through unchanged. docs/exit-codes.md is
// the user-facing table; keep both in step.
const (
	ExitUsage          = 64 // bad flag, malformed target or image reference
	ExitImageData      = 65 // corrupt, truncated or malicious image content
	ExitTargetNotFound = 66 // no such process or container, or it is not running
	ExitImageNotFound  = 67 // image or tag does not exist, or not cached with --pull never
	ExitUnreachable    = 68 // registry or runtime API could not be reached
	ExitUnsupported    = 69 // host lacks a needed feature (overlayfs), or the image has no build for it
	ExitInternal       = 70 // a bug in ephem
	ExitOS             = 71 // an operating-system call failed
	ExitBusy           = 72 // the session is attached elsewhere
	ExitCreate         = 73 // Kubernetes: the runtime could not create the debug container
	ExitTimeout        = 74 // Kubernetes: the debug container did not start within --timeout
	ExitTargetGone     = 75 // the target exited during the session
	ExitPermission     = 77 // not root; access denied by a registry, RBAC or admission
	ExitConfig         = 78 // Kubernetes: no usable kubeconfig
)

// joinType is the type of errors.Join's errors, which backends return for
// several failures at once (a fan-out's pods).
var joinType = reflect.TypeOf(errors.Join(errors.New("")))

// joined returns the errors err joins, following single wraps, or nil.
func joined(err error) []error {
	for ; err != nil; err = errors.Unwrap(err) {
		if reflect.TypeOf(err) == joinType {
			return err.(interface{ Unwrap() []error }).Unwrap()
		}
	}
	return nil
}

// exitCodeFor maps an error to ephem's documented exit code by the sentinel
// it wraps. Joined errors exit with the first one's code.
func exitCodeFor(err error) int {
	if errs := joined(err); len(errs) > 0 {
		return exitCodeFor(errs[0])
	}
	var exit *runtime.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.Code
	case errors.Is(err, errUsage), errors.Is(err, target.ErrInvalid), errors.Is(err, image.ErrInvalidReference),
		errors.Is(err, runtime.ErrInvalidSpec):
		return ExitUsage
	case errors.Is(err, image.ErrLocalConfig):
		return localConfigCode(err)
	case errors.Is(err, image.ErrCorrupt):
		return ExitImageData
	case errors.Is(err, target.ErrNotFound):
		return ExitTargetNotFound
	case errors.Is(err, image.ErrNotFound), errors.Is(err, runtime.ErrImagePull):
		return ExitImageNotFound
	case errors.Is(err, image.ErrUnreachable), errors.Is(err, target.ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, runtime.ErrUnsupported), errors.Is(err, image.ErrUnsupported):
		return ExitUnsupported
	case errors.Is(err, runtime.ErrConfig):
		return ExitConfig
	case errors.Is(err, runtime.ErrCreate):
		return ExitCreate
	case errors.Is(err, runtime.ErrTimeout):
		return ExitTimeout
	case errors.Is(err, runtime.ErrTargetGone):
		return ExitTargetGone
	case errors.Is(err, runtime.ErrPermission), errors.Is(err, target.ErrPermission), errors.Is(err, image.ErrAuth):
		return ExitPermission
	case errors.Is(err, runtime.ErrBusy):
		return ExitBusy
	case errors.Is(err, runtime.ErrOS), errors.Is(err, image.ErrNoSpace):
		return ExitOS
	default:
		return ExitInternal
	}
}

// localConfigCode is the code of unusable local configuration: 77 when it
// may not be written, 71 on a read-only file system, else 64 (a
// --cache-dir that is no directory, a config.json that does not parse).
func localConfigCode(err error) int {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return ExitPermission
	case errors.Is(err, unix.EROFS):
		return ExitOS
	}
	return ExitUsage
}
