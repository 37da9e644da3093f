package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

func init() { nsenter.Register(runInit) }

// runInit is the debug container's init. It runs twice in the same process.
// First (EnvJoin set) with every privilege: the constructor has mounted the
// image and joined the target's namespaces, and setupMain finishes the root
// and re-executes ephem. Then (EnvDrop set) as the container's equal: the
// constructor has dropped to the command's credentials, and superviseMain
// runs the command and stays as the session's subreaper until every process
// of the session is gone. No command runs while init is privileged. It
// never returns.
func runInit() {
	fd, err := strconv.Atoi(os.Getenv(nsenter.EnvCtl))
	if err != nil || fd < 0 {
		os.Exit(125)
	}
	c := &conn{f: os.NewFile(uintptr(fd), "ephem-ctl")}
	if os.Getenv(nsenter.EnvDrop) == "" {
		err = setupMain(c, fd)
		_ = c.send(errorMessage(err))
		os.Exit(125)
	}
	code, err := superviseMain(c)
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
	m := message{T: msgError, Kind: nsenter.KindOS, Msg: err.Error()}
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

// envConfig is the descriptor of the memfd that carries the config and the
// resolved user from setupMain to superviseMain.
const envConfig = "_EPHEM_CONFIG"

// stage2 is what superviseMain gets from setupMain.
type stage2 struct {
	Config *initConfig    `json:"config"`
	User   *user.ExecUser `json:"user"`
}

// setupMain is init's privileged half: it receives the config, sets up the
// root, resolves the command's user, and re-executes ephem so that the
// constructor drops to the container's credentials. It returns only on
// failure.
func setupMain(c *conn, ctl int) error {
	// Nothing init inherited (the layer pins, the target's namespaces,
	// whatever ephem itself inherited) survives the re-execution but the
	// control socket, the attach listener and the config.
	if err := closeOnExec(); err != nil {
		return err
	}
	attach := os.Getenv(envAttach)
	for _, k := range []string{nsenter.EnvJoin, nsenter.EnvCtl, nsenter.EnvRootfs, nsenter.EnvLower, nsenter.EnvNewPID, nsenter.EnvRootIDs, nsenter.EnvUnshare, envAttach} {
		_ = os.Unsetenv(k)
	}
	m, fds, err := c.recv()
	if err != nil {
		return err
	}
	cfg, err := readConfig(m, fds)
	if err != nil {
		return err
	}
	warn := func(s string) { _ = c.send(message{T: msgWarning, Msg: s}) }
	if err := setupRoot(cfg, warn); err != nil {
		return err
	}
	u, err := resolveUser(cfg)
	if err != nil {
		return err
	}
	b, err := json.Marshal(stage2{Config: cfg, User: u})
	if err != nil {
		return fmt.Errorf("encoding the config: %w", err)
	}
	mfd, err := unix.MemfdCreate("ephem-config", 0)
	if err != nil {
		return fmt.Errorf("creating the config's memfd: %w", err)
	}
	if _, err := unix.Pwrite(mfd, b, 0); err != nil {
		return fmt.Errorf("writing the config's memfd: %w", err)
	}
	env := append(os.Environ(),
		nsenter.EnvCtl+"="+strconv.Itoa(ctl),
		envConfig+"="+strconv.Itoa(mfd),
		nsenter.EnvDrop+"="+nsenter.DropSpec(u.Uid, u.Gid, u.Sgids, capMask(cfg.Caps), cfg.NoNewPrivs, setgroupsAllowed()))
	keep := []int{ctl, mfd}
	if n, err := strconv.Atoi(attach); err == nil && n > 2 {
		env = append(env, envAttach+"="+attach)
		keep = append(keep, n)
	}
	for _, fd := range keep {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("keeping descriptor %d: %w", fd, err)
		}
	}
	err = unix.Exec("/proc/self/exe", []string{"ephem-init"}, env)
	return fmt.Errorf("re-executing init without privileges: %w", err)
}

func capMask(caps []int) uint64 {
	var m uint64
	for _, c := range caps {
		if c >= 0 && c < 64 {
			m |= 1 << uint(c)
		}
	}
	return m
}

// superviseMain is init's half with the container's credentials: it runs
// the command and supervises the session.
func superviseMain(c *conn) (int, error) {
	listener := attachListener()
	fd, err := strconv.Atoi(os.Getenv(envConfig))
	if err != nil {
		return 0, &initError{nsenter.KindInternal, fmt.Errorf("bad %s: %w", envConfig, err)}
	}
	for _, k := range []string{nsenter.EnvCtl, nsenter.EnvDrop, envConfig, envAttach} {
		_ = os.Unsetenv(k)
	}
	f := os.NewFile(uintptr(fd), "ephem-config")
	var st stage2
	err = json.NewDecoder(f).Decode(&st)
	f.Close()
	if err == nil && (st.Config == nil || st.User == nil) {
		err = errors.New("the config or the user is missing")
	}
	if err != nil {
		return 0, &initError{nsenter.KindInternal, fmt.Errorf("reading the config: %w", err)}
	}
	// The descriptors left are the control socket, the listener and the
	// standard streams: none may reach the command.
	if err := closeOnExec(); err != nil {
		return 0, err
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("becoming the session's subreaper: %w", err)
	}
	// SIGTERM is the relay's death: end the session.
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	p, err := newProcess(st.Config, st.User)
	if err != nil {
		return 0, err
	}
	if p.master != nil {
		// init keeps its copy of the master: a detached session's
		// terminal outlives the client, for the next ephem attach.
		if err := c.send(message{T: msgPTY}, int(p.master.Fd())); err != nil {
			return 0, err
		}
	}
	if err := p.start(); err != nil {
		return 0, err
	}
	if err := c.send(message{T: msgStarted}); err != nil {
		p.killAll()
	}
	code, last := supervise(c, p, term, listener)
	if last != nil {
		_ = last.send(message{T: msgExit, Code: code})
	}
	return code, nil
}

// closeOnExec marks every descriptor above standard error close-on-exec.
func closeOnExec() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing open descriptors: %w", err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// attachListener is the inherited listening socket of an interactive
// session, or nil.
func attachListener() *net.UnixListener {
	fd, err := strconv.Atoi(os.Getenv(envAttach))
	if err != nil {
		return nil
	}
	l, err := net.FileListener(os.NewFile(uintptr(fd), "ephem-attach"))
	if err != nil {
		return nil
	}
	ul, _ := l.(*net.UnixListener)
	return ul
}

// client is the ephem process attached to the session.
type client struct {
	c      *conn
	msgs   chan message
	closed chan struct{}
}

func watchClient(c *conn) *client {
	cl := &client{c: c, msgs: make(chan message), closed: make(chan struct{})}
	go func() {
		defer close(cl.closed)
		for {
			m, _, err := c.recv()
			if err != nil {
				return
			}
			select {
			case cl.msgs <- m:
			case <-cl.closed:
				return
			}
		}
	}()
	return cl
}

// accept passes reattaching clients on.
func accept(l *net.UnixListener, out chan<- *conn) {
	for {
		uc, err := l.AcceptUnix()
		if err != nil {
			return
		}
		f, err := uc.File()
		_ = uc.Close()
		if err == nil {
			out <- &conn{f: f}
		}
	}
}

// supervise waits for the command, forwards the signals the client asks
// for, and kills the whole session when the command ends, init is told to
// stop, or the client goes away without detaching. A detached session keeps
// running and is reattached through l. It returns the command's exit code
// and the client to tell it to, if any.
func supervise(c *conn, p *process, term <-chan os.Signal, l *net.UnixListener) (int, *conn) {
	cur := watchClient(c)
	attach := make(chan *conn)
	if l != nil {
		go accept(l, attach)
	}
	reaped := make(chan int)
	go reap(p.cmd.Process.Pid, reaped)
	code := -1
	var kill <-chan struct{}
	stop := func() {
		if kill == nil {
			kill = p.killAll()
		}
	}
	var msgs <-chan message
	var closed <-chan struct{}
	follow := func(cl *client) {
		cur, msgs, closed = cl, nil, nil
		if cl != nil {
			msgs, closed = cl.msgs, cl.closed
		}
	}
	follow(cur)
	for {
		select {
		case status, ok := <-reaped:
			if !ok { // no children left: the session is over
				if code < 0 {
					code = 137
				}
				if cur == nil {
					return code, nil
				}
				return code, cur.c
			}
			code = status
			stop()
		case m := <-msgs:
			switch m.T {
			case msgSignal:
				p.signal(unix.Signal(m.Signal))
			case msgKill:
				stop()
			case msgDetach:
				cur.c.f.Close()
				follow(nil)
			}
		case <-closed:
			// The client went away without detaching (killed, say).
			follow(nil)
			stop()
		case nc := <-attach:
			if cur != nil || p.master == nil {
				_ = nc.send(message{T: msgError, Kind: nsenter.KindBusy, Msg: "the session is attached elsewhere: detach the other client (ctrl-p ctrl-q) or try again when it has"})
				nc.f.Close()
				continue
			}
			if err := nc.send(message{T: msgPTY}, int(p.master.Fd())); err != nil {
				nc.f.Close()
				continue
			}
			follow(watchClient(nc))
		case <-term:
			follow(nil)
			stop()
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
