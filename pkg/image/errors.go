package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"unicode"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sentinel errors. Errors returned by this package wrap at most one of them;
// callers map them to exit codes with errors.Is.
var (
	// ErrInvalidReference reports a malformed image reference, including
	// malformed oci: and docker-archive: forms.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrNotFound reports that an image, tag or manifest does not exist, that
	// an OCI layout, tag or archive file is missing, or that an image is not
	// cached under PullNever.
	ErrNotFound = errors.New("image not found")
	// ErrUnreachable reports that the registry could not be reached (dial,
	// TLS or timeout failures), or kept failing (HTTP 5xx, 408 or 429
	// through go-containerregistry's retries).
	ErrUnreachable = errors.New("registry unreachable")
	// ErrCorrupt reports image data that fails verification: a digest or
	// diffID mismatch, a truncated or invalid blob or tar stream, a
	// manifest over 4 MiB, a blob missing from an OCI layout or docker
	// archive, or a layer entry that would escape its layer directory.
	ErrCorrupt = errors.New("corrupt image data")
	// ErrAuth reports that the registry refused access (HTTP 401 or 403).
	ErrAuth = errors.New("registry denied access")
	// ErrUnsupported reports an image this package cannot use, such as an
	// index without a manifest for the wanted platform, or an image with no
	// layers or more than one overlay mount takes.
	ErrUnsupported = errors.New("unsupported image")
)

// ErrLocalConfig reports local configuration ephem cannot use: a cache
// directory that cannot be one (not a directory, read-only, not writable
// by this user), or a Docker config.json that does not parse. The cause
// (fs.ErrPermission, EROFS) stays in the chain for the exit code.
var ErrLocalConfig = errors.New("unusable local configuration")

// ErrNoSpace reports an unpack stopped for lack of space on the cache's
// file system (below the --cache-min-free floor, or ENOSPC).
var ErrNoSpace = errors.New("no space left for the image")

// ErrTooLarge reports an image that unpacks to more than the cap; it is
// corrupt (or malicious) data for ephem's purposes.
var ErrTooLarge = fmt.Errorf("%w: image too large", ErrCorrupt)

var sentinels = []error{ErrInvalidReference, ErrNotFound, ErrUnreachable, ErrCorrupt, ErrAuth, ErrUnsupported, ErrNoSpace, ErrLocalConfig}

// hasSentinel reports whether err already wraps one of the sentinels.
func hasSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// classify wraps an error from go-containerregistry or the network with the
// sentinel that describes it, adding what the user can do about it. Errors
// that already carry a sentinel, and those it cannot place, are returned as
// they are, but a registry's answer is always condensed to one line.
func classify(err error) error {
	if err == nil || hasSentinel(err) || errors.Is(err, context.Canceled) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return classifyHTTP(te, oneLine(err))
	}
	if isNetError(err) {
		return fmt.Errorf("%w: %w (check that the registry is up and reachable from this host; "+
			"a plain-HTTP registry must be listed as insecure)", ErrUnreachable, err)
	}
	return err
}

// classifyHTTP wraps err, which carries the registry's answer te, with the
// sentinel of te's error codes or, failing those, of its HTTP status.
func classifyHTTP(te *transport.Error, err error) error {
	for _, d := range te.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return notFoundError(te, err)
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return authError(err)
		case transport.TooManyRequestsErrorCode, transport.UnavailableErrorCode:
			return failingError(err)
		}
	}
	switch {
	case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
		return authError(err)
	case te.StatusCode == http.StatusNotFound:
		return notFoundError(te, err)
	case te.StatusCode == http.StatusRequestTimeout || te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500:
		return failingError(err)
	}
	return err
}

// notFoundError wraps a registry's 404: a missing blob is the registry's
// fault, a missing manifest most likely a wrong name or tag.
func notFoundError(te *transport.Error, err error) error {
	if te.Request != nil && strings.Contains(te.Request.URL.Path, "/blobs/") {
		return fmt.Errorf("%w: %w (the registry lacks a blob that the image's manifest lists)", ErrNotFound, err)
	}
	return fmt.Errorf("%w: %w (check the repository name and tag)", ErrNotFound, err)
}

func authError(err error) error {
	return fmt.Errorf("%w: %w (log in with docker login, or check the credentials in the Docker config)", ErrAuth, err)
}

// failingError wraps a registry's server error, rate limit or timeout that
// persisted through go-containerregistry's retries.
func failingError(err error) error {
	return fmt.Errorf("%w: %w (the registry keeps failing; try again later)", ErrUnreachable, err)
}

// maxLine bounds the text of a registry's answer quoted in an error.
const maxLine = 300

// lineError is an error whose text is condensed to one line (see oneLine).
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// oneLine returns err with its text on one line, without control
// characters, cut at maxLine runes: a registry's error body, an HTML page
// with terminal escapes say, is not printed as it is. It unwraps to err.
func oneLine(err error) error {
	msg := err.Error()
	clean := strings.Join(strings.FieldsFunc(msg, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if r := []rune(clean); len(r) > maxLine {
		clean = string(r[:maxLine]) + "…"
	}
	if clean == msg {
		return err
	}
	return &lineError{msg: clean, err: err}
}

// isNetError reports whether err is a dial, TLS, DNS, reset or timeout error.
func isNetError(err error) bool {
	var (
		ne   net.Error
		oe   *net.OpError
		de   *net.DNSError
		ua   x509.UnknownAuthorityError
		ci   x509.CertificateInvalidError
		he   x509.HostnameError
		rh   tls.RecordHeaderError
		cve  *tls.CertificateVerificationError
		errs = []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
			syscall.ETIMEDOUT, context.DeadlineExceeded}
	)
	for _, e := range errs {
		if errors.Is(err, e) {
			return true
		}
	}
	if errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ua) || errors.As(err, &ci) ||
		errors.As(err, &he) || errors.As(err, &rh) || errors.As(err, &cve) {
		return true
	}
	// A bare syscall.Errno is a net.Error too (it has Timeout and
	// Temporary), but ENOENT from opening a local blob is no network
	// failure; the network's own errnos are listed above.
	if !errors.As(err, &ne) {
		return false
	}
	_, errno := ne.(syscall.Errno)
	return !errno
}

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrCorrupt, fmt.Errorf(format, args...))
}
