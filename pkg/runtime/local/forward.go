package local

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"sync"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/sys/unix"
)

var _ runtime.Forwarder = (*Engine)(nil)

// Bounds of port-forward's waits, variables for tests.
var (
	// dialTimeout bounds one connection attempt inside the target.
	dialTimeout = 10 * time.Second
	// udpIdle is how long a UDP flow lives without a datagram either way.
	udpIdle = 60 * time.Second
	// shutdownWait bounds the wait for relays to end once ctx has ended.
	shutdownWait = 5 * time.Second
)

// dialThreads is how many threads dial in the target's namespace, so that
// one slow dial does not hold up the others.
const dialThreads = 4

// Forward implements runtime.Forwarder. Sockets toward the target are made
// by threads that joined its network namespace and do nothing else (without
// root, by a socket helper: rootless_socket.go), so nothing runs or is left
// in the target. It returns nil when ctx ends, and
// an ErrTargetGone error when the target exits first.
func (e *Engine) Forward(ctx context.Context, ref target.Ref, ports []runtime.PortPair, log io.Writer) error {
	if err := e.checkCaller(ctx, ref); err != nil { // root, or the owner (rootless.go)
		return err
	}
	ports, err := normalize(ports)
	if err != nil {
		return err
	}
	proc, err := e.resolve(ctx, ref)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", ref, err)
	}
	ns, err := openNetNS(proc)
	if err != nil {
		return err
	}
	defer ns.close()
	f := &forwarder{ns: ns, ref: ref, log: &runtime.LineLog{W: log}}
	return f.run(ctx, ports)
}

// normalize fills the defaults of ports and checks that their addresses
// are IP addresses: a name would be resolved on the host, not in the target.
func normalize(ports []runtime.PortPair) ([]runtime.PortPair, error) {
	return runtime.NormalizePorts(ports, "tcp", "udp")
}

// netNS is a target's network namespace, joined by dialing threads, and a
// pidfd that says when the target exits.
type netNS struct {
	pidfd   *os.File
	nsfile  *os.File
	reqs    chan dialReq
	quit    chan struct{}
	threads sync.WaitGroup
	once    sync.Once
	helper  *socketHelper // without root, instead of the threads (rootless_socket.go)
}

type dialReq struct {
	ctx           context.Context
	network, addr string
	reply         chan dialResult
}

type dialResult struct {
	conn net.Conn
	err  error
}

// openNetNS opens proc's network namespace, once, and starts the threads
// that dial in it, checking that proc still runs once the namespace is open.
func openNetNS(proc target.Process) (*netNS, error) {
	fd, err := unix.PidfdOpen(proc.PID, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("%w: %s has exited", target.ErrNotFound, proc.Description)
	}
	n := &netNS{pidfd: os.NewFile(uintptr(fd), "pidfd"), reqs: make(chan dialReq), quit: make(chan struct{})}
	if n.nsfile, err = os.Open("/proc/" + strconv.Itoa(proc.PID) + "/ns/net"); err != nil {
		_ = n.pidfd.Close()
		return nil, procError(proc.PID, "ns/net", err)
	}
	if !pidAlive(fd) { // the PID may have been reused since resolving
		n.close()
		return nil, fmt.Errorf("%w: %s exited while ephem opened it", target.ErrNotFound, proc.Description)
	}
	if rootless() {
		if n.helper, err = startSocketHelper(proc.PID, n.nsfile); err != nil {
			n.close()
			return nil, err
		}
		return n, nil
	}
	for range dialThreads {
		ready := make(chan error, 1)
		n.threads.Add(1)
		go n.serveDials(int(n.nsfile.Fd()), ready)
		if err := <-ready; err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

// serveDials joins the namespace on a thread of its own and dials there
// for dial's callers until close. A dial creates its socket on the calling
// thread, in the namespace; the connection is then usable anywhere.
func (n *netNS) serveDials(nsfd int, ready chan<- error) {
	defer n.threads.Done()
	// Never unlocked: the thread leaves the host's network namespace, so it
	// must end with this goroutine rather than run others.
	goruntime.LockOSThread()
	if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
		ready <- fmt.Errorf("%w: joining the target's network namespace: %w", runtime.ErrOS, err)
		return
	}
	ready <- nil
	// An IP address dials one address, on this goroutine (no fallback
	// racing on others).
	d := net.Dialer{Timeout: dialTimeout, FallbackDelay: -1}
	for {
		select {
		case <-n.quit:
			return
		case r := <-n.reqs:
			c, err := d.DialContext(r.ctx, r.network, r.addr)
			r.reply <- dialResult{c, err}
		}
	}
}

// dial connects to addr (an IP address and port) inside the namespace.
func (n *netNS) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.helper != nil {
		return n.helper.dial(ctx, network, addr)
	}
	r := dialReq{ctx: ctx, network: network, addr: addr, reply: make(chan dialResult, 1)}
	select {
	case n.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.quit:
		return nil, net.ErrClosed
	}
	res := <-r.reply // bounded by dialTimeout and ctx
	return res.conn, res.err
}

// exited returns a channel closed when the target exits. Its goroutine
// ends at close.
func (n *netNS) exited() <-chan struct{} {
	ch := make(chan struct{})
	rc, err := n.pidfd.SyscallConn()
	if err != nil {
		return ch
	}
	go func() {
		// A pidfd turns readable when its process exits.
		if rc.Read(func(fd uintptr) bool { return !pidAlive(int(fd)) }) == nil {
			close(ch)
		}
	}()
	return ch
}

// close stops the dialing threads, which end with their goroutines, and
// closes the namespace and the pidfd.
func (n *netNS) close() {
	n.once.Do(func() {
		close(n.quit)
		n.threads.Wait()
		if n.helper != nil {
			n.helper.close()
		}
		_ = n.nsfile.Close()
		_ = n.pidfd.Close()
	})
}

// pidAlive says whether the process a pidfd holds still runs.
func pidAlive(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	k, err := unix.Poll(fds, 0)
	return err == nil && k == 0
}

// forwarder is one port-forward: its listeners and relays.
type forwarder struct {
	ns        *netNS
	ref       target.Ref
	log       *runtime.LineLog
	relays    sync.WaitGroup
	listeners []io.Closer
}

// run listens on every port, then serves them until ctx ends or the
// target exits, and closes everything before it returns.
func (f *forwarder) run(ctx context.Context, ports []runtime.PortPair) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serves, err := f.listen(ctx, ports)
	if err != nil {
		f.closeListeners()
		return err
	}
	for _, serve := range serves {
		f.relays.Go(serve)
	}
	select {
	case <-ctx.Done():
	case <-f.ns.exited():
		err = fmt.Errorf("%w: %s: the port-forward ends", runtime.ErrTargetGone, f.ref)
	}
	cancel() // closes every connection and flow
	f.closeListeners()
	done := make(chan struct{})
	go func() { f.relays.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownWait):
		f.log.Printf("warning: some connections did not close within %s\n", shutdownWait)
	}
	return err
}

// listen opens every pair's listener and prints what it forwards. It
// returns the functions that serve them.
func (f *forwarder) listen(ctx context.Context, ports []runtime.PortPair) ([]func(), error) {
	var lc net.ListenConfig
	serves := make([]func(), 0, len(ports))
	lines := ""
	for _, p := range ports {
		local := net.JoinHostPort(p.LocalAddr, strconv.Itoa(int(p.Local)))
		remote := net.JoinHostPort(p.RemoteHost, strconv.Itoa(int(p.Remote)))
		var addr net.Addr
		if p.Protocol == "udp" {
			pc, err := lc.ListenPacket(ctx, "udp", local)
			if err != nil {
				return nil, runtime.ListenError(local+"/udp", err)
			}
			f.listeners = append(f.listeners, pc)
			addr = pc.LocalAddr()
			u := &udpForward{f: f, pc: pc, remote: remote, flows: map[string]*udpFlow{}}
			serves = append(serves, func() { u.serve(ctx) })
		} else {
			ln, err := lc.Listen(ctx, "tcp", local)
			if err != nil {
				return nil, runtime.ListenError(local, err)
			}
			f.listeners = append(f.listeners, ln)
			addr = ln.Addr()
			serves = append(serves, func() { f.serveTCP(ctx, ln, remote) })
		}
		suffix := map[string]string{"tcp": "", "udp": "/udp"}[p.Protocol]
		lines += fmt.Sprintf("forwarding %s%s -> %s%s in %s's network namespace\n", addr, suffix, remote, suffix, f.ref)
	}
	f.log.Printf("%s", lines)
	return serves, nil
}

func (f *forwarder) closeListeners() {
	for _, l := range f.listeners {
		_ = l.Close()
	}
}
