package local

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
)

// serveTCP relays every connection ln accepts to remote until ln closes.
func (f *forwarder) serveTCP(ctx context.Context, ln net.Listener, remote string) {
	runtime.ServeListener(ctx, ln, f.log, func(c net.Conn) { f.relays.Go(func() { f.relayTCP(ctx, c, remote) }) })
}

// relayTCP connects c to remote in the target and copies both ways until
// both sides have closed, or ctx ends.
func (f *forwarder) relayTCP(ctx context.Context, c net.Conn, remote string) {
	defer c.Close()
	r, err := f.ns.dial(ctx, "tcp", remote)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Printf("ephem: connection from %s to %s: connecting to %s in %s's network namespace: %v\n",
				c.RemoteAddr(), c.LocalAddr(), remote, f.ref, unwrapOp(err))
		}
		return
	}
	defer r.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); r.Close() })
	defer stop()
	done := make(chan struct{})
	go func() { pipe(r, c); close(done) }()
	pipe(c, r)
	<-done
}

// pipe copies src to dst, then half-closes dst; a failure closes both.
func pipe(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	dst.Close()
}

// unwrapOp drops net.OpError's "dial tcp ADDR:" prefix, said already.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// maxUDPFlows bounds the UDP clients one forward relays at once; datagrams
// of further clients are dropped until a flow ends.
const maxUDPFlows = 1024

// udpForward relays one local UDP port: each client address is a flow
// with a socket of its own in the target, which ends after udpIdle without
// a datagram either way.
type udpForward struct {
	f      *forwarder
	pc     net.PacketConn
	remote string

	mu    sync.Mutex
	flows map[string]*udpFlow
	full  bool // a client was turned away since the last flow ended
}

// udpFlow is one client's socket in the target.
type udpFlow struct {
	conn    net.Conn
	last    atomic.Int64 // when the last datagram passed, in Unix nanoseconds
	refused atomic.Bool  // the refusal was logged
}

func (fl *udpFlow) touch() { fl.last.Store(time.Now().UnixNano()) }

// serve reads the clients' datagrams and sends each through its flow
// until pc closes.
func (u *udpForward) serve(ctx context.Context) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := u.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an ICMP error for an earlier reply, say
		}
		fl := u.flow(ctx, from)
		if fl == nil {
			continue
		}
		if _, err := fl.conn.Write(buf[:n]); err != nil {
			u.refused(fl, from, err)
		}
	}
}

// flow returns from's flow, dialing a new one in the target when it has
// none; nil when it cannot.
func (u *udpForward) flow(ctx context.Context, from net.Addr) *udpFlow {
	key := from.String()
	u.mu.Lock()
	fl, full := u.flows[key], len(u.flows) >= maxUDPFlows
	if fl != nil {
		fl.touch() // under mu: the flow's reaper sees it
	}
	logFull := full && fl == nil && !u.full
	u.full = u.full || (full && fl == nil)
	u.mu.Unlock()
	if fl != nil || full {
		if logFull {
			u.f.log.Printf("ephem: %s/udp relays %d clients already: dropping datagrams of new ones\n", u.pc.LocalAddr(), maxUDPFlows)
		}
		return fl
	}
	c, err := u.f.ns.dial(ctx, "udp", u.remote)
	if err != nil {
		if ctx.Err() == nil {
			u.f.log.Printf("ephem: datagram from %s to %s/udp: connecting to %s/udp in %s's network namespace: %v\n",
				from, u.pc.LocalAddr(), u.remote, u.f.ref, unwrapOp(err))
		}
		return nil
	}
	fl = &udpFlow{conn: c}
	fl.touch()
	u.mu.Lock()
	u.flows[key] = fl
	u.mu.Unlock()
	u.f.relays.Go(func() { u.replies(ctx, fl, from, key) })
	return fl
}

// replies sends what the target answers on fl back to the client from,
// until fl has been idle for udpIdle or ctx ends.
func (u *udpForward) replies(ctx context.Context, fl *udpFlow, from net.Addr, key string) {
	stop := context.AfterFunc(ctx, func() { fl.conn.Close() })
	defer stop()
	defer fl.conn.Close()
	buf := make([]byte, 64<<10)
	for {
		_ = fl.conn.SetReadDeadline(time.Now().Add(udpIdle))
		n, err := fl.conn.Read(buf)
		if n > 0 {
			fl.touch()
			_, _ = u.pc.WriteTo(buf[:n], from)
		}
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			if u.reap(fl, key) {
				return
			}
		case errors.Is(err, syscall.ECONNREFUSED):
			u.refused(fl, from, err)
		default:
			return // closed
		}
	}
}

// reap removes fl when it has been idle for udpIdle, and says so.
func (u *udpForward) reap(fl *udpFlow, key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if time.Since(time.Unix(0, fl.last.Load())) < udpIdle {
		return false
	}
	delete(u.flows, key)
	u.full = false
	return true
}

// refused logs, once per flow, that nothing listens at the remote port.
func (u *udpForward) refused(fl *udpFlow, from net.Addr, err error) {
	if errors.Is(err, net.ErrClosed) || fl.refused.Swap(true) {
		return
	}
	u.f.log.Printf("ephem: datagram from %s to %s/udp: sending to %s/udp in %s's network namespace: %v\n",
		from, u.pc.LocalAddr(), u.remote, u.f.ref, unwrapOp(err))
}
