package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
)

var errConnRefused = syscall.ECONNREFUSED

// sess is one running debug container seen from the host: the session
// ephem started (cmd is its relay) or one it reattached to (cmd is nil).
type sess struct {
	e       *Engine
	cmd     *exec.Cmd
	ctl     *conn
	id      string // the reattachment ID of an interactive session
	c       spec.Container
	streams session.Streams
	timer   *runtime.Timer
	// left is set when the user detached and the session outlives us.
	left bool
}

// detached says whether the user detached from the session.
func (s *sess) detached() bool { return s.left }

func specTTY() spec.Container { return spec.Container{Stdin: true, TTY: true} }

type received struct {
	m   message
	fds []int
	err error
}

// relay runs the session until the command's exit code is known, the user
// detaches, or it fails. t, the target, is nil when reattaching.
func (s *sess) relay(ctx context.Context, t *openTarget, what string) error {
	defer s.ctl.f.Close()
	msgs := make(chan received)
	go func() {
		for {
			m, fds, err := s.ctl.recv()
			msgs <- received{m, fds, err}
			if err != nil {
				return
			}
		}
	}()
	var gone <-chan struct{}
	if t != nil {
		gone = t.exited()
	}
	var (
		termDone   = make(chan error, 1)
		terminal   bool
		grace      <-chan time.Time
		done       = ctx.Done()
		targetGone bool
	)
	for {
		select {
		case r := <-msgs:
			if r.err != nil {
				// A target that is PID 1 of its namespace takes the
				// session with it: the kernel kills every process there,
				// and the target's own exit completes once the relay has
				// reaped our init.
				s.wait()
				if !targetGone && t != nil {
					select {
					case <-gone:
						targetGone = true
					case <-time.After(time.Second):
					}
				}
				return s.finish(fmt.Errorf("%w: the debug container's init ended without an exit code", runtime.ErrOS), targetGone, what)
			}
			switch r.m.T {
			case msgError:
				s.abort()
				return s.setupError(errors.New(r.m.Msg), r.m)
			case msgWarning:
				fmt.Fprintf(s.e.opts.Log, "warning: %s\n", r.m.Msg)
			case msgPTY:
				if len(r.fds) != 1 {
					s.abort()
					return fmt.Errorf("%w: init sent %d terminal descriptors", runtime.ErrOS, len(r.fds))
				}
				master := os.NewFile(uintptr(r.fds[0]), "pty-master")
				term := &session.Terminal{Master: master, Streams: s.streams, DetachKeys: s.e.opts.DetachKeys}
				terminal = true
				go func() { termDone <- term.Run(ctx); master.Close() }()
			case msgStarted:
				s.timer.Mark("container")
			case msgExit:
				s.timer.Mark("command")
				// init reports the exit once every process of the session
				// is gone: let the terminal's last output through first.
				if terminal {
					select {
					case err := <-termDone:
						if err != nil && !errors.Is(err, session.ErrDetached) {
							fmt.Fprintf(s.e.opts.Log, "warning: relaying the terminal: %v\n", err)
						}
					case <-time.After(time.Second):
					}
				}
				s.wait()
				if targetGone {
					return s.finish(nil, true, what)
				}
				if r.m.Code != 0 {
					return &runtime.ExitError{Code: r.m.Code}
				}
				return nil
			}
		case err := <-termDone:
			if errors.Is(err, session.ErrDetached) {
				if s.id == "" {
					fmt.Fprintln(s.e.opts.Log, "detached: ending the session (it has no terminal to reattach to)")
					_ = s.ctl.send(message{T: msgKill})
					continue
				}
				if err := s.ctl.send(message{T: msgDetach}); err != nil {
					return fmt.Errorf("%w: detaching: %w", runtime.ErrOS, err)
				}
				s.left = true
				fmt.Fprintf(s.e.opts.Log, "\r\ndetached: session %s keeps running; reattach with: ephem attach %s\r\n", s.id, s.id)
				return nil
			}
		case <-gone:
			gone, targetGone = nil, true
			_ = s.ctl.send(message{T: msgKill})
		case <-done:
			done = nil
			sig := session.SignalOf(context.Cause(ctx))
			_ = s.ctl.send(message{T: msgSignal, Signal: int(sig)})
			grace = time.After(s.e.opts.GracePeriod)
		case <-grace:
			_ = s.ctl.send(message{T: msgKill})
		}
	}
}

// finish turns the end of a session without an exit code into an error.
func (s *sess) finish(err error, targetGone bool, what string) error {
	s.wait()
	if targetGone {
		return fmt.Errorf("%w: %s exited during the session", runtime.ErrTargetGone, what)
	}
	return err
}

// setupError maps init's report of a failed set-up to a sentinel error.
func (s *sess) setupError(err error, m ...message) error {
	s.wait()
	if len(m) == 0 {
		return err
	}
	switch m[0].Kind {
	case "unsupported":
		return fmt.Errorf("%w: %w", runtime.ErrUnsupported, err)
	case "permission":
		return fmt.Errorf("%w: %w", runtime.ErrPermission, err)
	case "usage":
		return fmt.Errorf("%w: %w", runtime.ErrInvalidSpec, err)
	case "notfound":
		return &runtime.ExitError{Code: 127, Err: err}
	}
	return fmt.Errorf("%w: setting up the debug container: %w", runtime.ErrOS, err)
}

// abort kills the init and its relay.
func (s *sess) abort() {
	_ = s.ctl.send(message{T: msgKill})
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
}

func (s *sess) wait() {
	if s.cmd != nil {
		_ = s.cmd.Wait()
	}
}
