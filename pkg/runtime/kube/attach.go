package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// attach connects the user's streams to the running container name, over
// WebSocket with a fallback to SPDY, as kubectl attach does. It reports
// whether the user detached.
func (b *call) attach(ctx context.Context, p *corev1.Pod, name string, tty bool, streams session.Streams) (bool, error) {
	return b.attachWith(ctx, p, name, tty, streams, attachHooks{})
}

// attachHooks let a caller attach before the API server reports the
// container running (early.go).
type attachHooks struct {
	// notRunning is called when the kubelet does not run the container
	// (yet): it returns nil once it is time to try again, or the error to
	// give up with. Without it attach retries for about 5 s, 250 ms apart.
	notRunning func(ctx context.Context) error
	// connected is called once, when the stream is up.
	connected func()
	// shown, if set, counts the bytes of output the attach delivered.
	shown *atomic.Int64
}

// attachWith is attach with hooks.
func (b *call) attachWith(ctx context.Context, p *corev1.Pod, name string, tty bool, streams session.Streams, h attachHooks) (bool, error) {
	u := b.client.AttachURL(p.Namespace, p.Name, &corev1.PodAttachOptions{
		Container: name, Stdin: true, Stdout: true, Stderr: !tty, TTY: tty,
	})
	exec, err := b.executor(u)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := &detachReader{r: streams.In, keys: b.opts.DetachKeys, onDetach: cancel, onFirst: h.connected}
	opts := remotecommand.StreamOptions{Stdin: in, Stdout: streams.Out, Tty: tty}
	if !tty {
		opts.Stderr = streams.Err
	}
	if h.shown != nil {
		opts.Stdout = &counter{w: opts.Stdout, n: h.shown}
		if opts.Stderr != nil {
			opts.Stderr = &counter{w: opts.Stderr, n: h.shown}
		}
	}
	if tty {
		fmt.Fprintln(b.opts.Log, "If you don't see a command prompt, try pressing enter.")
		if fd, ok := fileFd(streams.In); ok && term.IsTerminal(fd) {
			old, err := term.MakeRaw(fd)
			if err != nil {
				return false, fmt.Errorf("%w: putting the terminal in raw mode: %w", runtime.ErrOS, err)
			}
			defer func() { _ = term.Restore(fd, old) }()
		}
		q := newSizeQueue(streams.Out)
		defer q.stop()
		opts.TerminalSizeQueue = q
	}
	notRunning := h.notRunning
	if notRunning == nil {
		// The API server may report the container running a moment
		// before the kubelet's own view has it: retry briefly.
		tries := 0
		notRunning = func(ctx context.Context) error {
			if tries++; tries > 20 {
				return errGaveUp
			}
			return sleep(ctx, 250*time.Millisecond)
		}
	}
	for {
		err = exec.StreamWithContext(ctx, opts)
		if err == nil || in.started() || in.detached || !notRunningError(err) {
			break
		}
		if nerr := notRunning(ctx); errors.Is(nerr, errGaveUp) {
			break // report the kubelet's answer
		} else if nerr != nil {
			return false, nerr
		}
	}
	if in.detached {
		return true, nil
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return false, apiFailure(err, "attaching to %s in pod %s", name, p.Name)
	}
	return false, nil
}

var errGaveUp = errors.New("gave up")

// notRunningError says whether err is the kubelet's answer for a container
// its runtime does not run (yet, or any more).
func notRunningError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, " not found in pod ")
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// executor returns a WebSocket executor falling back to SPDY.
func (b *call) executor(u *url.URL) (remotecommand.Executor, error) {
	ws, err := remotecommand.NewWebSocketExecutor(b.config, "GET", u.String())
	if err != nil {
		return nil, fmt.Errorf("%w: creating the WebSocket executor: %w", runtime.ErrOS, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(b.config, "POST", u)
	if err != nil {
		return nil, fmt.Errorf("%w: creating the SPDY executor: %w", runtime.ErrOS, err)
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		// The kubelet's "not running" answer is not the upgrade's fault:
		// SPDY would get the same, a round trip later.
		return (httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)) && !notRunningError(err)
	})
}

// logs copies the container's output to w, following it while it runs.
func (b *call) logs(ctx context.Context, p *corev1.Pod, name string, w io.Writer, follow bool) error {
	rc, err := b.client.PodLogs(ctx, p.Namespace, p.Name, &corev1.PodLogOptions{Container: name, Follow: follow})
	if err != nil {
		return apiFailure(err, "reading the output of %s in pod %s", name, p.Name)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: reading the output of %s: %w", runtime.ErrOS, name, err)
	}
	return nil
}

// detachReader passes input through until the detach keys are typed.
type detachReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	detached bool
	onDetach func()
	onFirst  func() // called once, when the stream is up (its first Read)
	first    sync.Once
	up       atomic.Bool
}

// started says whether a stream has read from it: the attach connected.
func (d *detachReader) started() bool { return d.up.Load() }

func (d *detachReader) Read(p []byte) (int, error) {
	d.first.Do(func() {
		d.up.Store(true)
		if d.onFirst != nil {
			d.onFirst()
		}
	})
	if d.detached {
		return 0, io.EOF
	}
	n, err := d.r.Read(p)
	for i := 0; i < n && len(d.keys) > 0; i++ {
		if p[i] != d.keys[d.matched] {
			d.matched = 0
			continue
		}
		d.matched++
		if d.matched == len(d.keys) {
			d.detached = true
			d.onDetach()
			return i + 1 - len(d.keys), io.EOF
		}
	}
	return n, err
}

// sizeQueue feeds window sizes to remotecommand: the current one, then one
// per SIGWINCH.
type sizeQueue struct {
	out  io.Writer
	ch   chan os.Signal
	done chan struct{}
	sent bool
}

func newSizeQueue(out io.Writer) *sizeQueue {
	q := &sizeQueue{out: out, ch: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(q.ch, unix.SIGWINCH)
	return q
}

// Next implements remotecommand.TerminalSizeQueue.
func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	for {
		if q.sent {
			select {
			case <-q.ch:
			case <-q.done:
				return nil
			}
		}
		q.sent = true
		if rows, cols, ok := session.Size(q.out); ok {
			return &remotecommand.TerminalSize{Height: rows, Width: cols}
		}
	}
}

func (q *sizeQueue) stop() {
	signal.Stop(q.ch)
	close(q.done)
}

func fileFd(v any) (int, bool) {
	f, ok := v.(session.Filer) // a file, or a recorder wrapping one
	if !ok {
		return 0, false
	}
	return int(f.Fd()), true
}
