package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"k8s.io/klog/v2"
)

// debugRelay reaches hosts other than the pod's loopback from inside the
// pod: each connection is one exec of the tool image's nc in the pod's
// helper debugger (helperdebugger.go), which is reused, or added once and
// left idle (ephemeral containers cannot be removed).
type debugRelay struct {
	call *call
	h    *helper
	name string // the helper debug container
}

// openRelay finds or adds the helper debugger that relays connections to
// other hosts.
func (f *podForwarder) openRelay(ctx context.Context, ref target.Ref) (*debugRelay, error) {
	h, err := f.helperFor(ctx, target.Ref{Scheme: target.SchemePod, Name: f.pod.Name, Container: ref.Container, Raw: "pod/" + f.pod.Name}, "port-forward", "")
	if err != nil {
		return nil, fmt.Errorf("starting the relay for hosts other than the pod's 127.0.0.1: %w", err)
	}
	return &debugRelay{call: f.call, h: h, name: h.name}, nil
}

// dial implements dialer: it starts nc HOST PORT in the helper debugger,
// its stdin and stdout the connection.
func (r *debugRelay) dial(ctx context.Context, _ net.Conn, p runtime.PortPair) (io.ReadWriteCloser, error) {
	// A relay cut short (Ctrl-C, a client gone) is no error to report:
	// client-go's stream copiers would log one line each about it.
	ctx, cancel := context.WithCancel(klog.NewContext(ctx, klog.Logger{}))
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &relayStream{in: inW, out: outR, cancel: cancel, done: make(chan struct{})}
	argv := []string{"nc", p.RemoteHost, strconv.Itoa(int(p.Remote))}
	go func() {
		defer close(s.done)
		s.err = r.call.exec(ctx, r.h, argv, inR, outW, &s.stderr)
		_ = outW.Close()
	}()
	return s, nil
}

func (r *debugRelay) close() {}

// relayStream is one connection relayed by nc in the helper debugger.
type relayStream struct {
	in     *io.PipeWriter
	out    *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	stderr tailBuffer
	err    error
	once   sync.Once
	result error
}

func (s *relayStream) Read(p []byte) (int, error)  { return s.out.Read(p) }
func (s *relayStream) Write(p []byte) (int, error) { return s.in.Write(p) }

// CloseWrite ends nc's input: it sends what it has and half-closes.
func (s *relayStream) CloseWrite() error { return s.in.Close() }

// Close ends the exec and returns why nc failed, if it did ("nc: can't
// connect to remote host (10.0.0.7): Connection refused").
func (s *relayStream) Close() error {
	s.once.Do(func() {
		_ = s.in.Close()
		s.cancel()
		<-s.done // the exec returns once its context ends
		// Its stdin copier ends at the EOF of s.in: closing inR too would
		// make it log a "closed pipe" error.
		_ = s.out.Close()
		if s.err != nil && !errors.Is(s.err, context.Canceled) {
			if msg := lastLine(s.stderr.String()); msg != "" {
				s.result = errors.New(msg)
			} else {
				s.result = s.err
			}
		}
	})
	return s.result
}
