package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	corev1 "k8s.io/api/core/v1"
)

// Client-side request limits (kubectl's own defaults since 1.27 are 50 and
// 300 for discovery) and the fan-out's bound on pods in flight: with about
// six requests per pod, 20 pods keep a fan-out below the burst.
const (
	clientQPS      = 50
	clientBurst    = 150
	fanOutParallel = 32
	fanOutPatches  = 4
)

// fanOut runs a non-interactive command in every pod concurrently (at most
// fanOutParallel at a time), each
// line of output prefixed with its pod's name. It returns errors.Join of
// the pods' errors in pod order, each naming its pod; the CLI reports each
// and exits with the first one's code. It takes pods over: each is
// emptied once its session has it.
func (b *call) fanOut(ctx context.Context, pods []*corev1.Pod, containerName string, c spec.Container, streams session.Streams) error {
	if c.Stdin || c.TTY {
		return fmt.Errorf("%w: -i and -t need one pod; %d match: name one, or drop -i/-t to run in all", runtime.ErrInvalidSpec, len(pods))
	}
	var mu sync.Mutex
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	slots := make(chan struct{}, fanOutParallel)
	reviews := b.reviews // asked already, or being asked (debug)
	if reviews == nil {
		reviews = &reviewCache{}
	}
	var hub *podHub
	if b.listed.selector != "" {
		names := make([]string, len(pods))
		for i, p := range pods {
			names[i] = p.Name
		}
		hub = startHub(ctx, b.client, b.namespace, b.listed, names)
		defer hub.stop()
	}
	// Each session owns its pod, and the list's copy is emptied: the pods
	// share the list's array, which would keep every decoded pod alive
	// until the last session ends. A session drops its pod once it has
	// built its container (debugPod).
	owned := make([]*corev1.Pod, len(pods))
	for i := range pods {
		owned[i] = new(corev1.Pod)
		*owned[i], *pods[i] = *pods[i], corev1.Pod{}
	}
	for i := range owned {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := owned[i]
			owned[i] = nil
			name := p.Name
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				errs[i] = &PodError{Pod: name, Err: ctx.Err()}
				return
			}
			out := &prefixWriter{w: streams.Out, mu: &mu, prefix: "[" + name + "] "}
			errOut := &prefixWriter{w: streams.Err, mu: &mu, prefix: "[" + name + "] "}
			sub := &call{Backend: b.Backend, opts: b.opts, namespace: b.namespace, reviews: reviews, hub: hub}
			sub.opts.Log = errOut
			if err := sub.debugPod(ctx, p, containerName, c, session.Streams{In: streams.In, Out: out, Err: errOut}); err != nil {
				errs[i] = &PodError{Pod: name, Err: err}
			}
			out.flush()
			errOut.flush()
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(b.opts.Log, "%d of %d pods failed\n", failed, len(pods))
	}
	return errors.Join(errs...)
}

// addToPod is addContainer for debugPod. In a fan-out, at most
// fanOutPatches patches are in flight, and of each answer only what the
// session reads is kept: the answer is the whole pod, every ephemeral
// container and managed field of it, and 30 of them decoded at once
// doubled the client's peak memory. The API server handles them in turn
// anyway.
func (b *call) addToPod(ctx context.Context, p *corev1.Pod, ec *corev1.EphemeralContainer) (*corev1.Pod, error) {
	if b.hub == nil {
		return b.addContainer(ctx, p, ec)
	}
	select {
	case b.hub.patches <- struct{}{}:
		defer func() { <-b.hub.patches }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	q, err := b.addContainer(ctx, p, ec)
	if err != nil {
		return nil, err
	}
	return trimPod(q, map[string]bool{ec.Name: true}), nil
}

// PodError is one pod's failure in a fan-out.
type PodError struct {
	// Pod is the pod's name.
	Pod string
	// Err is what failed; an *runtime.ExitError for the command's own code.
	Err error
}

func (e *PodError) Error() string { return "pod " + e.Pod + ": " + e.Err.Error() }

// Unwrap returns the pod's error.
func (e *PodError) Unwrap() error { return e.Err }

// prefixWriter prefixes every line with the pod's name, writing whole lines
// only so concurrent pods do not interleave within a line.
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
	buf    bytes.Buffer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf.Write(b)
	for {
		i := bytes.IndexByte(p.buf.Bytes(), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := p.buf.Next(i + 1)
		p.mu.Lock()
		_, err := io.WriteString(p.w, p.prefix+string(line))
		p.mu.Unlock()
		if err != nil {
			return len(b), err
		}
	}
}

func (p *prefixWriter) flush() {
	if p.buf.Len() > 0 {
		_, _ = p.Write([]byte("\n"))
	}
}
