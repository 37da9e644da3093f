package local

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
	"golang.org/x/sys/unix"
)

func init() { nsenter.Register(runInit) }

// runInit is the debug container's init. The constructor has mounted the
// image and joined the target's namespaces; this finishes the root, runs the
// command and stays as the session's subreaper until every process of the
// session is gone. It never returns.
func runInit() {
	fd, err := strconv.Atoi(os.Getenv(nsenter.EnvCtl))
	if err != nil {
		os.Exit(125)
	}
	c := &conn{f: os.NewFile(uintptr(fd), "ephem-ctl")}
	code, err := initMain(c)
	if err != nil {
		_ = c.send(errorMessage(err))
		os.Exit(125)
	}
	os.Exit(code)
}

// initError carries the category the host maps to a sentinel error.
type initError struct {
	kind string
	err  error
}

func (e *initError) Error() string { return e.err.Error() }
func (e *initError) Unwrap() error { return e.err }

func errorMessage(err error) message {
	m := message{T: msgError, Kind: "os", Msg: err.Error()}
	var ie *initError
	if errors.As(err, &ie) {
		m.Kind = ie.kind
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		m.Errno = int(errno)
	}
	return m
}

func initMain(c *conn) (int, error) {
	for _, k := range []string{nsenter.EnvJoin, nsenter.EnvCtl, nsenter.EnvRootfs, nsenter.EnvLower, nsenter.EnvNewPID} {
		_ = os.Unsetenv(k)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("becoming the session's subreaper: %w", err)
	}
	// SIGTERM is the relay's death (and so ephem's): end the session.
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	m, _, err := c.recv()
	if err != nil {
		return 0, err
	}
	if m.T != msgConfig || m.Config == nil {
		return 0, fmt.Errorf("expected the config, got %q", m.T)
	}
	cfg := m.Config
	warn := func(s string) { _ = c.send(message{T: msgWarning, Msg: s}) }
	if err := setupRoot(cfg, warn); err != nil {
		return 0, err
	}
	p, err := newProcess(cfg)
	if err != nil {
		return 0, err
	}
	if p.master != nil {
		if err := c.send(message{T: msgPTY}, int(p.master.Fd())); err != nil {
			return 0, err
		}
		p.master.Close()
	}
	if err := p.start(); err != nil {
		return 0, err
	}
	if err := c.send(message{T: msgStarted}); err != nil {
		p.killAll()
	}
	code, reported := supervise(c, p, term)
	if reported {
		_ = c.send(message{T: msgExit, Code: code})
	}
	return code, nil
}

// supervise waits for the command, forwards signals the host asks for, and
// kills the whole session when the command ends, the host goes away or init
// is told to stop. It returns the command's exit code and whether the host
// is still there to be told.
func supervise(c *conn, p *process, term <-chan os.Signal) (int, bool) {
	ctl := make(chan message)
	ctlClosed := make(chan struct{})
	go func() {
		defer close(ctlClosed)
		for {
			m, _, err := c.recv()
			if err != nil {
				return
			}
			ctl <- m
		}
	}()
	reaped := make(chan int)
	go reap(p.cmd.Process.Pid, reaped)
	code, host := -1, true
	var kill <-chan struct{}
	for {
		select {
		case status, ok := <-reaped:
			if !ok { // no children left: the session is over
				if code < 0 {
					code = 137
				}
				return code, host
			}
			code = status
			if kill == nil {
				kill = p.killAll()
			}
		case m := <-ctl:
			switch m.T {
			case msgSignal:
				p.signal(unix.Signal(m.Signal))
			case msgKill:
				if kill == nil {
					kill = p.killAll()
				}
			}
		case <-ctlClosed:
			ctlClosed, host = nil, false
			if kill == nil {
				kill = p.killAll()
			}
		case <-term:
			host = false
			if kill == nil {
				kill = p.killAll()
			}
		}
	}
}

// reap waits for every child (init is the session's subreaper). It sends
// the command's exit code when the command ends and closes out when no
// child is left.
func reap(cmdPID int, out chan<- int) {
	defer close(out)
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		if pid == cmdPID {
			out <- exitCode(ws)
		}
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
