package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ErrDetached is returned when the user typed the detach keys.
var ErrDetached = errors.New("detached")

// DefaultDetachKeys are ctrl-p, ctrl-q, as Docker and kubectl use.
var DefaultDetachKeys = []byte{0x10, 0x11}

// SizeObserver is told every window size Size reads from it: the sizes a
// session passes on to the container's terminal (a recorder's resize
// events).
type SizeObserver interface{ ObserveSize(rows, cols uint16) }

// Size returns the window size of w when it is a terminal; backends call it
// at the start and on every SIGWINCH, and w, when a SizeObserver, is told.
func Size(w io.Writer) (rows, cols uint16, ok bool) {
	fd, isFile := fdOf(w)
	if !isFile {
		return 0, 0, false
	}
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 {
		return 0, 0, false
	}
	if o, ok := w.(SizeObserver); ok {
		o.ObserveSize(ws.Row, ws.Col)
	}
	return ws.Row, ws.Col, true
}

// Terminal relays a TTY session between the user's streams and the master
// end of the container's terminal: raw mode while it runs, window-size
// changes passed on, and the detach keys watched for.
type Terminal struct {
	// Master is the terminal's master end.
	Master *os.File
	// Streams are the user's.
	Streams Streams
	// DetachKeys end the relay with ErrDetached (nil: DefaultDetachKeys).
	DetachKeys []byte
	// OnDetach, when set, is called as soon as the keys are typed.
	OnDetach func()
}

// Run relays until the container side closes the terminal (nil), the
// detach keys are typed (ErrDetached) or ctx ends.
func (t *Terminal) Run(ctx context.Context) error {
	if fd, ok := fdOf(t.Streams.In); ok && term.IsTerminal(fd) {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("putting the terminal in raw mode: %w", err)
		}
		defer func() { _ = term.Restore(fd, old) }()
	}
	stopResize := t.forwardResize()
	defer stopResize()
	out := make(chan error, 1)
	go func() {
		_, err := io.Copy(t.Streams.Out, t.Master)
		out <- err
	}()
	detached := make(chan struct{})
	go t.copyInput(detached)
	select {
	case err := <-out:
		if isHangup(err) {
			return nil
		}
		return err
	case <-detached:
		return ErrDetached
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// isHangup says whether a read error means the terminal's last user left.
func isHangup(err error) bool {
	return err == nil || errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrClosed)
}

func (t *Terminal) copyInput(detached chan<- struct{}) {
	keys := t.DetachKeys
	if keys == nil {
		keys = DefaultDetachKeys
	}
	buf := make([]byte, 32*1024)
	matched := 0
	for {
		n, err := t.Streams.In.Read(buf)
		start := 0
		for i := 0; i < n; i++ {
			if len(keys) == 0 || buf[i] != keys[matched] {
				matched = 0
				continue
			}
			matched++
			if matched == len(keys) {
				_, _ = t.Master.Write(buf[start : i+1-len(keys)])
				if t.OnDetach != nil {
					t.OnDetach()
				}
				close(detached)
				return
			}
		}
		if n > start {
			if _, werr := t.Master.Write(buf[start:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// End of input: send EOF (ctrl-d) as a terminal would.
			_, _ = t.Master.Write([]byte{4})
			return
		}
	}
}

// forwardResize copies the user's window size to the container's terminal
// now and on every SIGWINCH.
func (t *Terminal) forwardResize() (stop func()) {
	resize := func() {
		if rows, cols, ok := Size(t.Streams.Out); ok {
			_ = unix.IoctlSetWinsize(int(t.Master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
		}
	}
	resize()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				resize()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// SignalOf returns the signal that cancelled ctx through
// signal.NotifyContext, or SIGTERM when none is known.
func SignalOf(cause error) syscall.Signal {
	if cause != nil {
		for s := syscall.Signal(1); s < 32; s++ {
			if cause.Error() == s.String()+" signal received" {
				return s
			}
		}
	}
	return syscall.SIGTERM
}
