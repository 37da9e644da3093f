package runtime

import (
	"context"
	"sync"
)

// SessionReport is what a backend learns about a session that the caller
// cannot know beforehand: the target as resolved, the image's digest. The
// CLI puts one in the context (WithReport) and writes it to the audit log
// when the session ends; backends fill what they know and may ignore it.
type SessionReport struct {
	mu             sync.Mutex
	resolvedTarget string
	imageDigest    string
	sessionID      string
}

// SetResolvedTarget records the target as resolved: "pid 4242 (docker
// container web)", "pod ns/web container app".
func (r *SessionReport) SetResolvedTarget(s string) {
	if r != nil {
		r.mu.Lock()
		r.resolvedTarget = s
		r.mu.Unlock()
	}
}

// SetImageDigest records the debug image's digest (sha256:...).
func (r *SessionReport) SetImageDigest(s string) {
	if r != nil {
		r.mu.Lock()
		r.imageDigest = s
		r.mu.Unlock()
	}
}

// SetSessionID records the backend's name for the session (a local session
// ID, pod/NAME/CONTAINER).
func (r *SessionReport) SetSessionID(s string) {
	if r != nil {
		r.mu.Lock()
		r.sessionID = s
		r.mu.Unlock()
	}
}

// Values returns what was recorded.
func (r *SessionReport) Values() (resolvedTarget, imageDigest, sessionID string) {
	if r == nil {
		return "", "", ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resolvedTarget, r.imageDigest, r.sessionID
}

type reportKey struct{}

// WithReport returns ctx carrying r.
func WithReport(ctx context.Context, r *SessionReport) context.Context {
	return context.WithValue(ctx, reportKey{}, r)
}

// ReportFrom returns the report ctx carries, or nil; the setters of a nil
// report do nothing, so backends call them unconditionally.
func ReportFrom(ctx context.Context) *SessionReport {
	r, _ := ctx.Value(reportKey{}).(*SessionReport)
	return r
}
