package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	utilexec "k8s.io/client-go/util/exec"
)

var _ runtime.Capturer = (*Backend)(nil)

// captureProfile is the profile of the helper debugger that captures:
// NET_RAW and NET_ADMIN, nothing of the node's.
const captureProfile = "netadmin"

// stopGrace bounds the wait for tcpdump to flush and exit once asked to.
const stopGrace = 10 * time.Second

// Capture implements runtime.Capturer: the tool image's tcpdump runs in a
// helper debugger with the netadmin profile (reused where one runs) and
// its pcap streams to w. The duration's end, or ctx's, closes tcpdump's
// standard input, which stops it (scriptCapture); nothing keeps running in
// the pod.
func (b *Backend) Capture(ctx context.Context, ref target.Ref, o runtime.CaptureOptions, w io.Writer) error {
	args, err := tcpdumpArgs(o)
	if err != nil {
		return err
	}
	k, err := b.callFor(ref)
	if err != nil {
		return err
	}
	h, err := k.helperFor(ctx, ref, "capture", captureProfile)
	if err != nil {
		return err
	}
	// The exec outlives ctx by the grace that lets tcpdump flush its last
	// packets.
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	in := &stopReader{stop: make(chan struct{})}
	defer in.close()
	var stderr tailBuffer
	done := make(chan error, 1)
	go func() {
		argv := append([]string{"sh", "-c", scriptCapture, "ephem"}, args...)
		done <- k.exec(ectx, h, argv, in, w, io.MultiWriter(&stderr, k.opts.Log))
	}()
	var timeout <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case err = <-done:
	case <-ctx.Done():
		err = stopCapture(in, done, cancel)
	case <-timeout:
		err = stopCapture(in, done, cancel)
	}
	if err == nil {
		return nil
	}
	return k.captureError(ctx, h, err, stderr.String())
}

// tcpdumpArgs are tcpdump's arguments for o (after -U -w -).
func tcpdumpArgs(o runtime.CaptureOptions) ([]string, error) {
	iface := o.Interface
	if iface == "" {
		iface = "any"
	}
	if strings.HasPrefix(iface, "-") || o.Count < 0 {
		return nil, usage("capture: bad interface %q or count %d", iface, o.Count)
	}
	args := []string{"-i", iface}
	if o.Count > 0 {
		args = append(args, "-c", strconv.Itoa(o.Count))
	}
	if o.Filter != "" {
		args = append(args, "--", o.Filter)
	}
	return args, nil
}

// stopCapture closes tcpdump's input and waits, bounded, for it to end.
func stopCapture(in *stopReader, done <-chan error, cancel func()) error {
	in.close()
	select {
	case err := <-done:
		return err
	case <-time.After(stopGrace):
		cancel()
		err := <-done
		return fmt.Errorf("%w: tcpdump did not stop within %v of being asked to (%w)", runtime.ErrTimeout, stopGrace, err)
	}
}

// captureError explains a failed capture.
func (b *call) captureError(ctx context.Context, h *helper, err error, stderr string) error {
	if errors.Is(err, runtime.ErrTimeout) {
		return err
	}
	what := "capturing in " + h.pod.Name
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		switch {
		case ce.Code == scriptUnsupported:
			return fmt.Errorf("%w: the tool image %s has no tcpdump: give --image (or EPHEM_IMAGE) an image that has one (nicolaka/netshoot, or a Debian image with the tcpdump package)",
				runtime.ErrUnsupported, h.image)
		case ce.Code < 128 && strings.Contains(stderr, "syntax error"):
			return fmt.Errorf("%w: capture filter: %s", runtime.ErrUsage, lastLine(stderr))
		case ce.Code < 128:
			return fmt.Errorf("%w: %s: tcpdump exited %d: %s", runtime.ErrOS, what, ce.Code, lastLine(stderr))
		}
	}
	return b.scriptError(context.WithoutCancel(ctx), h, what, err, stderr)
}

// stopReader is tcpdump's standard input: nothing, until close ends it.
type stopReader struct {
	stop chan struct{}
	once sync.Once
}

func (s *stopReader) Read([]byte) (int, error) {
	<-s.stop
	return 0, io.EOF
}

func (s *stopReader) close() { s.once.Do(func() { close(s.stop) }) }
