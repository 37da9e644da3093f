package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// portForwardURLer is implemented by clients that reach a real API server.
type portForwardURLer interface {
	// PortForwardURL is the pods/portforward URL of a pod.
	PortForwardURL(ns, name string) *url.URL
}

// PortForwardURL implements portForwardURLer.
func (c *restClient) PortForwardURL(ns, name string) *url.URL {
	return c.core.Post().Namespace(ns).Resource("pods").Name(name).SubResource("portforward").URL()
}

// tunnelDialTimeout bounds one upgrade of the pods/portforward connection.
var tunnelDialTimeout = 30 * time.Second

// apiTunnel is the pods/portforward connection to one pod, carrying a pair
// of streams (data and error) per TCP connection, as kubectl port-forward
// makes them. It is dialed again when the API server or kubelet closed it.
type apiTunnel struct {
	pod    *corev1.Pod
	dialer httpstream.Dialer

	mu     sync.Mutex
	conn   httpstream.Connection
	nextID int
	lostCh chan struct{} // closed when conn closes
}

// openTunnel connects to the pod's pods/portforward subresource, over
// WebSocket with a fallback to SPDY as kubectl does, so that RBAC or a
// kubelet that cannot forward fail before anything listens.
func (f *podForwarder) openTunnel(ctx context.Context) (*apiTunnel, error) {
	u, ok := f.client.(portForwardURLer)
	if !ok {
		return nil, fmt.Errorf("%w: this client cannot open pods/portforward", runtime.ErrUnsupported)
	}
	loc := u.PortForwardURL(f.pod.Namespace, f.pod.Name)
	transport, upgrader, err := spdy.RoundTripperFor(f.config)
	if err != nil {
		return nil, fmt.Errorf("%w: creating the SPDY transport: %w", runtime.ErrOS, err)
	}
	sd := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, loc)
	ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(loc, f.config)
	if err != nil {
		return nil, fmt.Errorf("%w: creating the WebSocket dialer: %w", runtime.ErrOS, err)
	}
	d := portforward.NewFallbackDialerForStreaming(ws, sd, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	t := &apiTunnel{pod: f.pod, dialer: d}
	if _, err := t.connection(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// connection returns the open connection, dialing one if there is none.
func (t *apiTunnel) connection(ctx context.Context) (httpstream.Connection, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		select {
		case <-t.lostCh:
			t.conn = nil
		default:
			return t.conn, nil
		}
	}
	ch := make(chan tunnelDial, 1)
	go func() {
		c, proto, err := t.dialer.Dial(portforward.PortForwardProtocolV1Name)
		ch <- tunnelDial{c, proto, err}
	}()
	var r tunnelDial
	select {
	case r = <-ch:
	case <-ctx.Done():
		go closeLate(ch)
		return nil, ctx.Err()
	case <-time.After(tunnelDialTimeout):
		go closeLate(ch)
		return nil, fmt.Errorf("%w: opening pods/portforward of pod %s: no answer after %s", target.ErrUnreachable, t.pod.Name, tunnelDialTimeout)
	}
	if r.err != nil {
		return nil, tunnelError(t.pod, r.err)
	}
	if r.protocol != portforward.PortForwardProtocolV1Name {
		_ = r.conn.Close()
		return nil, fmt.Errorf("%w: pods/portforward of pod %s: the server speaks %q, not %q", runtime.ErrUnsupported, t.pod.Name, r.protocol, portforward.PortForwardProtocolV1Name)
	}
	t.conn, t.lostCh = r.conn, make(chan struct{})
	conn, lost := r.conn, t.lostCh
	go func() {
		<-conn.CloseChan()
		close(lost)
	}()
	return conn, nil
}

// tunnelDial is what one dial of pods/portforward gave.
type tunnelDial struct {
	conn     httpstream.Connection
	protocol string
	err      error
}

// closeLate closes the connection a dial that was given up on still made.
func closeLate(ch <-chan tunnelDial) {
	if r := <-ch; r.err == nil {
		_ = r.conn.Close()
	}
}

// lost returns a channel closed when the current connection closes.
func (t *apiTunnel) lost() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lostCh
}

func (t *apiTunnel) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		_ = t.conn.Close()
		t.conn = nil
	}
}

// tunnelError maps a failed upgrade of pods/portforward to ephem's
// sentinels.
func tunnelError(p *corev1.Pod, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: pods/portforward of pod %s: %s: ask for \"create\" on pods/portforward", runtime.ErrPermission, p.Name, apiMessage(err))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: the API server did not accept your credentials: %s", runtime.ErrPermission, apiMessage(err))
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: pod %s: %s", target.ErrNotFound, p.Name, apiMessage(err))
	}
	return apiFailure(err, "opening pods/portforward of pod %s", p.Name)
}

// dial implements dialer: it opens the error and data streams of one
// connection to p.Remote on the pod's loopback. The kubelet connects when
// the data stream arrives; a refusal comes back on the error stream, so it
// is read by the returned stream's Close.
func (t *apiTunnel) dial(ctx context.Context, _ net.Conn, p runtime.PortPair) (io.ReadWriteCloser, error) {
	conn, err := t.connection(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	id := t.nextID
	t.nextID++
	t.mu.Unlock()
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(int(p.Remote)))
	h.Set(corev1.PortForwardRequestIDHeader, strconv.Itoa(id))
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return nil, fmt.Errorf("%w: creating the error stream: %w", target.ErrUnreachable, err)
	}
	_ = errStream.Close() // nothing is written to it
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		conn.RemoveStreams(errStream)
		return nil, fmt.Errorf("%w: creating the data stream: %w", target.ErrUnreachable, err)
	}
	s := &tunnelStream{conn: conn, data: data, errStream: errStream, errc: make(chan error, 1)}
	go func() {
		msg, err := io.ReadAll(errStream)
		switch {
		case err != nil:
			s.errc <- err
		case len(msg) > 0:
			s.errc <- errors.New(trimForwardError(string(msg)))
		default:
			s.errc <- nil
		}
	}()
	return s, nil
}

// trimForwardError shortens the kubelet's "error forwarding port 80 to pod
// ID, uid : failed to execute portforward in network namespace ...: failed
// to connect to localhost:80 inside namespace ..., IPv4: dial tcp4
// 127.0.0.1:80: connect: connection refused IPv6 ..." to its cause on the
// pod's 127.0.0.1 ("connect: connection refused").
func trimForwardError(msg string) string {
	msg = strings.TrimSpace(msg)
	i := strings.Index(msg, "dial tcp")
	if i < 0 {
		return msg
	}
	cause := msg[i:]
	if j := strings.Index(cause, " IPv6"); j >= 0 {
		cause = cause[:j]
	}
	if _, after, ok := strings.Cut(cause, ": "); ok {
		return strings.TrimSpace(after)
	}
	return cause
}

// tunnelStream is one forwarded connection: its data stream, and the error
// stream the kubelet reports a failure on.
type tunnelStream struct {
	conn      httpstream.Connection
	data      httpstream.Stream
	errStream httpstream.Stream
	errc      chan error
	once      sync.Once
	err       error
}

func (s *tunnelStream) Read(p []byte) (int, error)  { return s.data.Read(p) }
func (s *tunnelStream) Write(p []byte) (int, error) { return s.data.Write(p) }

// CloseWrite tells the pod's side that no more data comes.
func (s *tunnelStream) CloseWrite() error { return s.data.Close() }

// Close resets the data stream and returns what the kubelet reported on
// the error stream, if anything (waiting for it at most a moment).
func (s *tunnelStream) Close() error {
	s.once.Do(func() {
		_ = s.data.Reset()
		select {
		case s.err = <-s.errc:
		case <-time.After(2 * time.Second):
		}
		s.conn.RemoveStreams(s.data, s.errStream)
	})
	return s.err
}
