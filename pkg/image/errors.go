package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"

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
	// TLS or timeout failures).
	ErrUnreachable = errors.New("registry unreachable")
	// ErrCorrupt reports image data that fails verification: a digest or
	// diffID mismatch, a truncated or invalid blob or tar stream, or a layer
	// entry that would escape its layer directory.
	ErrCorrupt = errors.New("corrupt image data")
	// ErrAuth reports that the registry refused access (HTTP 401 or 403).
	ErrAuth = errors.New("registry denied access")
	// ErrUnsupported reports an image this package cannot use, such as an
	// index without a manifest for the wanted platform.
	ErrUnsupported = errors.New("unsupported image")
)

// ErrNoSpace reports an unpack stopped for lack of space on the cache's
// file system (below the --cache-min-free floor, or ENOSPC).
var ErrNoSpace = errors.New("no space left for the image")

// ErrTooLarge reports an image that unpacks to more than the cap; it is
// corrupt (or malicious) data for ephem's purposes.
var ErrTooLarge = fmt.Errorf("%w: image too large", ErrCorrupt)

var sentinels = []error{ErrInvalidReference, ErrNotFound, ErrUnreachable, ErrCorrupt, ErrAuth, ErrUnsupported, ErrNoSpace}

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
// they are.
func classify(err error) error {
	if err == nil || hasSentinel(err) || errors.Is(err, context.Canceled) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: %w (check the repository name and tag)", ErrNotFound, err)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return authError(err)
			}
		}
		switch te.StatusCode {
		case 401, 403:
			return authError(err)
		case 404:
			return fmt.Errorf("%w: %w (check the repository name and tag)", ErrNotFound, err)
		}
		return err
	}
	if isNetError(err) {
		return fmt.Errorf("%w: %w (check that the registry is up and reachable from this host; "+
			"a plain-HTTP registry must be listed as insecure)", ErrUnreachable, err)
	}
	return err
}

func authError(err error) error {
	return fmt.Errorf("%w: %w (log in with docker login, or check the credentials in the Docker config)", ErrAuth, err)
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
	return errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ua) || errors.As(err, &ci) ||
		errors.As(err, &he) || errors.As(err, &rh) || errors.As(err, &cve) || errors.As(err, &ne)
}

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrCorrupt, fmt.Errorf(format, args...))
}
