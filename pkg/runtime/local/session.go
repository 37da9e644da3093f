package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"golang.org/x/sys/unix"
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
			if r.m.T != msgPTY {
				closeAll(r.fds) // only a terminal comes with a descriptor
			}
			switch r.m.T {
			case msgError:
				s.abort()
				return s.setupError(errors.New(printable(r.m.Msg)), r.m)
			case msgWarning:
				fmt.Fprintf(s.e.opts.Log, "warning: %s\n", printable(r.m.Msg))
			case msgPTY:
				if len(r.fds) != 1 || terminal {
					closeAll(r.fds)
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
	case nsenter.KindUnsupported:
		return fmt.Errorf("%w: %w", runtime.ErrUnsupported, err)
	case nsenter.KindPermission:
		return fmt.Errorf("%w: %w", runtime.ErrPermission, err)
	case nsenter.KindUsage:
		return fmt.Errorf("%w: %w", runtime.ErrInvalidSpec, err)
	case nsenter.KindNotFound:
		return &runtime.ExitError{Code: 127, Err: err}
	case nsenter.KindBusy:
		return fmt.Errorf("%w: %w", runtime.ErrBusy, err)
	}
	return fmt.Errorf("%w: setting up the debug container: %w", runtime.ErrOS, err)
}

// abort ends a session whose set-up failed. It kills the container's init,
// not the relay: the relay reaps init and exits, where killing the relay
// first would leave init a zombie of the target's PID 1, which need not
// reap. The relay itself is killed only if it is still there after a
// second.
func (s *sess) abort() {
	_ = s.ctl.send(message{T: msgKill})
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	for _, pid := range childrenOf(s.cmd.Process.Pid) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	p := s.cmd.Process
	time.AfterFunc(time.Second, func() { _ = p.Kill() })
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

// childrenOf lists the children of process pid.
func childrenOf(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (s *sess) wait() {
	if s.cmd != nil {
		_ = s.cmd.Wait()
	}
}
