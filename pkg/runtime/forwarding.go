package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// What every backend's port-forward shares: the error of a listener that
// cannot be opened, the log that relays write to at once, and the accept
// loop that survives a transient failure.

// NormalizePorts fills the defaults of ports (tcp; listening on 127.0.0.1;
// relaying to the target's own 127.0.0.1) and checks each: a protocol
// among protocols, IP addresses (a name would be resolved on this host, not
// in the target) and a remote port. It returns a copy.
func NormalizePorts(ports []PortPair, protocols ...string) ([]PortPair, error) {
	if len(ports) == 0 {
		return nil, fmt.Errorf("%w: port-forward needs at least one port", ErrUsage)
	}
	out := make([]PortPair, len(ports))
	for i, p := range ports {
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		if p.LocalAddr == "" {
			p.LocalAddr = "127.0.0.1"
		}
		if p.RemoteHost == "" {
			p.RemoteHost = "127.0.0.1"
		}
		_, lerr := netip.ParseAddr(p.LocalAddr)
		_, rerr := netip.ParseAddr(p.RemoteHost)
		if !slices.Contains(protocols, p.Protocol) || lerr != nil || rerr != nil || p.Remote == 0 {
			return nil, fmt.Errorf("%w: forwarding %+v: want %s, IP addresses and a remote port", ErrUsage, p, strings.Join(protocols, " or "))
		}
		out[i] = p
	}
	return out, nil
}

// ListenError says why a local address could not be listened on: in use or
// not an address of this host (ErrOS, 71), or not allowed (ErrPermission,
// 77).
func ListenError(addr string, err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se
	}
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%w: listening on %s: %w", ErrPermission, addr, err)
	}
	return fmt.Errorf("%w: listening on %s: %w", ErrOS, addr, err)
}

// LineLog serializes the lines concurrent relays write to W.
type LineLog struct {
	mu sync.Mutex
	W  io.Writer
}

// Printf writes one formatted message while no other is being written.
func (l *LineLog) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.W, format, args...)
}

// ServeListener hands every connection ln accepts to handle until ln
// closes or ctx ends. A failed accept (out of descriptors, say) is logged
// and retried 100 ms later rather than ending the forward.
func ServeListener(ctx context.Context, ln net.Listener, log *LineLog, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("ephem: accepting on %s: %v\n", ln.Addr(), err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		handle(c)
	}
}
