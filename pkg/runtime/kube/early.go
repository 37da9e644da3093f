package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	corev1 "k8s.io/api/core/v1"
)

// earlyRetry is how long attachEarly waits between attaches the kubelet
// answers with "not running yet".
const earlyRetry = 25 * time.Millisecond

// errEnded says the container ended before an attach could reach it.
var errEnded = errors.New("the container ended before the attach")

// watched is what the pod watch decided about the debug container.
type watched struct {
	p   *corev1.Pod
	err error
}

// attachEarly attaches to the debug container name as soon as the container
// runtime runs it. The kubelet answers an attach from the runtime's own
// list of containers, while the pod status says Running only after its
// next relist (up to a second later on containerd 1.6), so it tries the
// attach from the moment the patch returns, every earlyRetry, while a
// watch of the pod looks for Waiting reasons that will not resolve
// (ErrImagePull: fail fast) and for the container's end. Both are bound by
// --timeout. It returns errEnded, with the pod, when the container ended
// before any attach reached it: the caller then shows its output and exit
// code.
func (b *call) attachEarly(ctx context.Context, p *corev1.Pod, name string, c spec.Container, streams session.Streams) (*corev1.Pod, bool, error) {
	var mu sync.Mutex // b.timer and the log lines of the watch
	mark := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		b.timer.Mark(what)
	}
	var connected atomic.Bool
	var watching sync.WaitGroup
	defer watching.Wait()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	actx, stopAttach := context.WithCancelCause(ctx)
	defer stopAttach(nil)
	// The watch's progress lines ("ContainerCreating") are of no use once
	// the session is up, and would break a raw terminal's lines.
	w := *b
	w.opts.Log = &gatedWriter{w: b.opts.Log, mu: &mu, closed: &connected, crlf: c.TTY}
	results := make(chan watched, 1)
	watching.Add(1)
	go func() {
		defer watching.Done()
		q, err := w.waitFor(wctx, p, name, "running", running)
		if err == nil {
			mark("running (status)")
			s, _ := containerStatus(q, name)
			reportSession(ctx, q, name, s.ImageID)
		} else if !connected.Load() {
			stopAttach(err)
		}
		results <- watched{q, err}
	}()

	// The --target check (an exec) runs beside the session and is waited
	// for, not cancelled: client-go logs a cancelled stream's teardown on
	// the terminal. It is bound by 3 s and over long before the exit code.
	var checked sync.WaitGroup
	defer checked.Wait()
	var last *watched // the watch's result, once read
	var since time.Time
	delay := earlyRetry
	notRunning := func(ctx context.Context) error {
		if last == nil {
			select {
			case r := <-results:
				last, since = &r, time.Now()
			default:
			}
		}
		if last != nil {
			if last.err != nil {
				return last.err
			}
			if s, _ := containerStatus(last.p, name); s.State.Terminated != nil {
				return errEnded
			}
			// Running says the status; the kubelet's runtime view
			// should follow at once.
			if time.Since(since) > 5*time.Second {
				return errGaveUp
			}
		}
		// Quick at first, then easier on the API server and the kubelet
		// while an image is pulled: 25 ms growing to 250 ms in about 2 s.
		d := delay
		delay = min(delay*11/10, 10*earlyRetry)
		return sleep(ctx, d)
	}
	closed := false // under mu: attachWith returned
	connect := func() {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		connected.Store(true)
		b.timer.Mark("attached")
		if ec, ok := ephemeral(p, name); ok {
			checked.Add(1)
			go func() {
				defer checked.Done()
				if warning := b.checkTarget(ctx, p, name, ec.TargetContainerName); warning != "" {
					mu.Lock()
					defer mu.Unlock()
					if c.TTY {
						warning = strings.ReplaceAll(warning, "\n", "\r\n")
					}
					fmt.Fprint(b.opts.Log, warning)
				}
			}()
		}
	}
	reportSession(ctx, p, name, "")
	// A container that is over a moment after it started may take an
	// attach that shows nothing of what it printed: count what came.
	var shown atomic.Int64
	detached, err := b.attachWith(actx, p, name, c.TTY, streams, attachHooks{notRunning: notRunning, connected: connect, shown: &shown})
	mu.Lock()
	closed = true
	mu.Unlock()
	if cause := context.Cause(actx); !connected.Load() && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the watch decided: ErrImagePull, the timeout...
	}
	if errors.Is(err, errEnded) {
		return last.p, detached, errEnded
	}
	if last == nil && (err == nil || detached) {
		// Let the status catch up (it has the image's digest) unless the
		// user left: then the session report goes without it.
		if !detached {
			select {
			case r := <-results:
				last = &r
			case <-time.After(2 * time.Second):
			}
		}
	}
	if last != nil && last.err == nil {
		p = last.p
	}
	if !detached && shown.Load() == 0 && (err == nil || exitedError(err)) {
		// Nothing came through the attach, the container being over
		// a moment after it started: show its output (its log has all
		// of it) instead.
		return p, false, errEnded
	}
	return p, detached, err
}

// gatedWriter passes writes through until closed says stop, then drops
// them. With crlf it ends lines with CR LF, for a terminal in raw mode.
type gatedWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	closed *atomic.Bool
	crlf   bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed.Load() {
		return len(p), nil
	}
	out := p
	if g.crlf {
		out = bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))
	}
	if _, err := g.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// firstWrite calls first before its first write (EPHEM_DEBUG_TIMING's
// "first output").
type firstWrite struct {
	w     io.Writer
	first func()
	done  bool
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.done {
		f.done = true
		f.first()
	}
	return f.w.Write(p)
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// exitedError says whether err is the container runtime's answer for an
// attach to a container that has just ended (containerd's words).
func exitedError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "CONTAINER_EXITED") || strings.Contains(msg, "no running task found")
}
