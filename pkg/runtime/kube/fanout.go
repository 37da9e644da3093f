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

// fanOut runs a non-interactive command in every pod concurrently, each
// line of output prefixed with its pod's name. The combined exit code is
// the first non-zero one in pod order; every pod's failure is reported.
func (b *Backend) fanOut(ctx context.Context, pods []*corev1.Pod, containerName string, c spec.Container, streams session.Streams) error {
	if c.Stdin || c.TTY {
		return fmt.Errorf("%w: -i and -t need one pod; %d match: name one, or drop -i/-t to run in all", runtime.ErrInvalidSpec, len(pods))
	}
	var mu sync.Mutex
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := &prefixWriter{w: streams.Out, mu: &mu, prefix: "[" + p.Name + "] "}
			errOut := &prefixWriter{w: streams.Err, mu: &mu, prefix: "[" + p.Name + "] "}
			sub := *b
			sub.opts.Log = errOut
			errs[i] = sub.debugPod(ctx, p, containerName, c, session.Streams{In: streams.In, Out: out, Err: errOut})
			out.flush()
			errOut.flush()
		}()
	}
	wg.Wait()
	var first error
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		var exit *runtime.ExitError
		if !errors.As(err, &exit) || exit.Err != nil {
			fmt.Fprintf(streams.Err, "[%s] ephem: %v\n", pods[i].Name, err)
		}
		if first == nil {
			first = err
		}
	}
	if failed > 0 {
		fmt.Fprintf(b.opts.Log, "%d of %d pods failed\n", failed, len(pods))
	}
	var exit *runtime.ExitError
	if errors.As(first, &exit) {
		return &runtime.ExitError{Code: exit.Code}
	}
	if first != nil {
		return &runtime.ExitError{Code: exitCodeOf(first)}
	}
	return nil
}

// ExitCodeFunc maps an error to ephem's exit code; the CLI sets it, so a
// fan-out's combined code matches what one pod's failure would give.
var ExitCodeFunc = func(error) int { return 1 }

func exitCodeOf(err error) int { return ExitCodeFunc(err) }

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
