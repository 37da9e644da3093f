package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// DefaultStallTimeout is how long a registry request may go without
// progress (no response headers, or no body bytes) before it is abandoned.
const DefaultStallTimeout = 30 * time.Second

// maxRedirects bounds the redirects one registry request may follow
// (go-containerregistry puts no limit on same-host ones).
const maxRedirects = 10

// errStalled is the cause of a request cancelled for making no progress.
var errStalled = errors.New("no progress")

// stallError reports a request that made no progress within the timeout. It
// is a net.Error that times out, so go-containerregistry retries it (with
// backoff, a bounded number of times) and classify reports the registry as
// unreachable.
type stallError struct {
	host string
	d    time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("%s sent nothing for %s (raise --pull-timeout for a slow registry)", e.host, e.d)
}

// Timeout and Temporary make stallError a net.Error.
func (e *stallError) Timeout() bool   { return true }
func (e *stallError) Temporary() bool { return true }

// bounded is a transport on which no registry request waits without end:
// it follows at most maxRedirects redirects, and a request whose headers,
// or any read of whose body, take longer than stall is cancelled.
type bounded struct {
	base  http.RoundTripper
	stall time.Duration
}

// RoundTrip implements http.RoundTripper.
func (b bounded) RoundTrip(req *http.Request) (*http.Response, error) {
	hops := 0
	for r := req.Response; r != nil && r.Request != nil; r = r.Request.Response {
		hops++
	}
	if hops >= maxRedirects {
		return nil, fmt.Errorf("%w: %s redirected %d times (a loop?): the registry is misconfigured", ErrUnreachable, req.URL.Host, hops)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(b.stall, func() { cancel(errStalled) })
	resp, err := b.base.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	if err != nil {
		stalled := errors.Is(context.Cause(ctx), errStalled)
		cancel(nil)
		if stalled {
			return nil, &stallError{host: req.URL.Host, d: b.stall}
		}
		return nil, err
	}
	// The same timer, stopped, now times each read of the body.
	resp.Body = &stallBody{rc: resp.Body, ctx: ctx, cancel: cancel, timer: timer, host: req.URL.Host, stall: b.stall}
	if req.Method == http.MethodGet && isManifestPath(req.URL.Path) && resp.StatusCode == http.StatusOK {
		return limitManifest(resp, req.URL.Host)
	}
	return resp, nil
}

// maxManifestSize is the largest manifest or index ephem reads, as Docker's
// registry and containerd (go-containerregistry would read 100 MiB).
const maxManifestSize = 4 << 20

// isManifestPath reports whether p is a registry's /v2/<name>/manifests/<ref>.
func isManifestPath(p string) bool {
	return strings.HasPrefix(p, "/v2/") && path.Base(path.Dir(p)) == "manifests"
}

// limitManifest refuses a manifest response over maxManifestSize: at once
// if its Content-Length says so, else when the body grows past it.
func limitManifest(resp *http.Response, host string) (*http.Response, error) {
	tooLarge := fmt.Errorf("%w: the manifest from %s is larger than %d MiB: the registry sent something that is no image manifest",
		ErrCorrupt, host, maxManifestSize>>20)
	if resp.ContentLength > maxManifestSize {
		_ = resp.Body.Close()
		return nil, tooLarge
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: maxManifestSize, err: tooLarge}
	return resp, nil
}

// limitedBody fails with err once more than left bytes were read from it.
type limitedBody struct {
	io.ReadCloser
	left int64
	err  error
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.ReadCloser.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, l.err
	}
	return n, err
}

// stallBody cancels its request when one Read waits longer than stall.
// Time the reader spends between reads does not count.
type stallBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	host   string
	stall  time.Duration
	once   sync.Once
}

func (s *stallBody) Read(p []byte) (int, error) {
	s.timer.Reset(s.stall)
	n, err := s.rc.Read(p)
	s.timer.Stop()
	if err != nil && errors.Is(context.Cause(s.ctx), errStalled) {
		return n, &stallError{host: s.host, d: s.stall}
	}
	return n, err
}

func (s *stallBody) Close() error {
	err := s.rc.Close()
	s.once.Do(func() {
		s.timer.Stop()
		s.cancel(nil)
	})
	return err
}
