package kube

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

var _ runtime.Forwarder = (*Backend)(nil)

// Bounds of port-forward's waits, variables for tests.
var (
	// forwardShutdownWait bounds the wait for relays to end once ctx has
	// ended.
	forwardShutdownWait = 5 * time.Second
	// podCheckEvery is how often the pod is checked while forwarding, so
	// that the forward ends (75) when the pod goes away.
	podCheckEvery = 2 * time.Second
)

// Forward implements runtime.Forwarder. A pair whose remote host is the
// pod's loopback (127.0.0.1, the default) goes through the API server's
// pods/portforward subresource: nothing is added to the pod and the port
// needs no containerPort. A pair to another host goes through a relay in a
// debug container of the pod (see forward_relay.go). UDP is refused: the
// API forwards TCP only. It returns nil when ctx ends, and an
// ErrTargetGone error when the pod goes away first.
func (b *Backend) Forward(ctx context.Context, ref target.Ref, ports []runtime.PortPair, log io.Writer) error {
	if ref.Scheme == target.SchemeNode {
		return fmt.Errorf("%w: port-forward to %s: name a pod or workload on the node instead", runtime.ErrUsage, ref)
	}
	ports, err := forwardPorts(ref, ports)
	if err != nil {
		return err
	}
	k, err := b.callFor(ref)
	if err != nil {
		return err
	}
	p, err := k.onePod(ctx, ref)
	if err != nil {
		return err
	}
	if err := checkRunning(p); err != nil {
		return err
	}
	f := &podForwarder{call: k, ref: ref, pod: p, log: &runtime.LineLog{W: log}}
	return f.run(ctx, ports)
}

// forwardPorts fills the defaults of ports and checks them: TCP only, IP
// addresses (a name would be resolved here, not in the pod).
func forwardPorts(ref target.Ref, ports []runtime.PortPair) ([]runtime.PortPair, error) {
	in := make([]runtime.PortPair, len(ports))
	for i, p := range ports {
		if p.Protocol == "udp" {
			return nil, fmt.Errorf("%w: port %d/udp: Kubernetes targets (%s) forward TCP only: the pods/portforward API carries no UDP",
				runtime.ErrUnsupported, p.Remote, ref)
		}
		if p.RemoteHost == "localhost" { // the pod's own, as kubectl port-forward says it
			p.RemoteHost = "127.0.0.1"
		}
		in[i] = p
	}
	return runtime.NormalizePorts(in, "tcp")
}

// viaAPI says whether the API's pods/portforward reaches p's remote host:
// it connects to the pod's own 127.0.0.1 only.
func viaAPI(p runtime.PortPair) bool { return p.RemoteHost == "127.0.0.1" }

// podForwarder is one port-forward to a pod: its listeners and relays.
type podForwarder struct {
	*call
	ref       target.Ref
	pod       *corev1.Pod
	log       *runtime.LineLog
	api       *apiTunnel  // pods/portforward, when a pair needs it
	relay     *debugRelay // a debug container's relay, when a pair needs it
	relays    sync.WaitGroup
	listeners []io.Closer
}

// dialer connects to one remote port as the pod sees it; each call is one
// TCP connection.
type dialer interface {
	dial(ctx context.Context, c net.Conn, p runtime.PortPair) (io.ReadWriteCloser, error)
}

// run connects to the pod, listens on every port, then serves them until
// ctx ends or the pod goes, and closes everything before it returns.
func (f *podForwarder) run(ctx context.Context, ports []runtime.PortPair) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer f.closeListeners()
	for _, p := range ports {
		var err error
		switch {
		case viaAPI(p) && f.api == nil:
			f.api, err = f.openTunnel(ctx)
		case !viaAPI(p) && f.relay == nil:
			f.relay, err = f.openRelay(ctx, f.ref)
		}
		if err != nil {
			return err
		}
	}
	if f.api != nil {
		defer f.api.close()
	}
	if f.relay != nil {
		defer f.relay.close()
	}
	serves, err := f.listen(ports)
	if err != nil {
		return err
	}
	for _, serve := range serves {
		f.relays.Go(func() { serve(ctx) })
	}
	err = f.watchPod(ctx)
	cancel() // closes every connection
	f.closeListeners()
	done := make(chan struct{})
	go func() { f.relays.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(forwardShutdownWait):
		f.log.Printf("warning: some connections did not close within %s\n", forwardShutdownWait)
	}
	return err
}

// listen opens every pair's listener and prints what it forwards. It
// returns the functions that serve them.
func (f *podForwarder) listen(ports []runtime.PortPair) ([]func(context.Context), error) {
	serves := make([]func(context.Context), 0, len(ports))
	lines := ""
	for _, p := range ports {
		local := net.JoinHostPort(p.LocalAddr, strconv.Itoa(int(p.Local)))
		ln, err := net.Listen("tcp", local)
		if err != nil {
			return nil, runtime.ListenError(local, err)
		}
		f.listeners = append(f.listeners, ln)
		var d dialer = f.api
		how := "pods/portforward"
		if !viaAPI(p) {
			d, how = f.relay, "relay in debug container "+f.relay.name
		}
		serves = append(serves, func(ctx context.Context) { f.serve(ctx, ln, p, d) })
		lines += fmt.Sprintf("forwarding %s -> %s in pod %s (%s)\n", ln.Addr(),
			net.JoinHostPort(p.RemoteHost, strconv.Itoa(int(p.Remote))), f.pod.Name, how)
	}
	f.log.Printf("%s", lines)
	return serves, nil
}

// serve relays every connection ln accepts until ln closes.
func (f *podForwarder) serve(ctx context.Context, ln net.Listener, p runtime.PortPair, d dialer) {
	runtime.ServeListener(ctx, ln, f.log, func(c net.Conn) { f.relays.Go(func() { f.relayConn(ctx, c, p, d) }) })
}

// relayConn copies between c and a new connection to p's remote port
// until both sides have closed, or ctx ends.
func (f *podForwarder) relayConn(ctx context.Context, c net.Conn, p runtime.PortPair, d dialer) {
	defer c.Close()
	remote := net.JoinHostPort(p.RemoteHost, strconv.Itoa(int(p.Remote)))
	r, err := d.dial(ctx, c, p)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Printf("ephem: connection from %s to %s: connecting to %s in pod %s: %v\n", c.RemoteAddr(), c.LocalAddr(), remote, f.pod.Name, err)
		}
		return
	}
	stop := context.AfterFunc(ctx, func() { c.Close(); r.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, r)
		halfClose(c)
		close(done)
	}()
	_, _ = io.Copy(r, c)
	// The local side said all: tell the remote side, then wait for its
	// answer to end (the pod's server closes it).
	if cw, ok := r.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	<-done
	if err := r.Close(); err != nil && ctx.Err() == nil {
		f.log.Printf("ephem: connection from %s to %s: %s in pod %s: %v\n", c.RemoteAddr(), c.LocalAddr(), remote, f.pod.Name, err)
	}
}

// halfClose ends c's write side, or all of c.
func halfClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	_ = c.Close()
}

// watchPod returns nil when ctx ends, and an ErrTargetGone error as soon
// as the pod is deleted or stops running.
func (f *podForwarder) watchPod(ctx context.Context) error {
	t := time.NewTicker(podCheckEvery)
	defer t.Stop()
	var lost <-chan struct{}
	if f.api != nil {
		lost = f.api.lost()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-lost:
			lost = nil // the next connection dials a new one
		}
		p, err := f.client.GetPod(ctx, f.pod.Namespace, f.pod.Name)
		switch {
		case ctx.Err() != nil:
			return nil
		case apierrors.IsNotFound(err) || (err == nil && p.UID != f.pod.UID):
			return fmt.Errorf("%w: pod %s was deleted: the port-forward ends", runtime.ErrTargetGone, f.pod.Name)
		case err == nil && (p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil):
			return fmt.Errorf("%w: pod %s is %s: the port-forward ends", runtime.ErrTargetGone, f.pod.Name, podState(p))
		}
		// Another error (the API server unreachable for a moment): the
		// next tick asks again.
	}
}

func podState(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "terminating"
	}
	return string(p.Status.Phase)
}

func (f *podForwarder) closeListeners() {
	for _, l := range f.listeners {
		_ = l.Close()
	}
}
