package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// debugPod adds the debug container to p and runs its session.
func (b *call) debugPod(ctx context.Context, p *corev1.Pod, containerName string, c spec.Container, streams session.Streams) error {
	b.timer = runtime.NewTimer(b.opts.Log)
	defer b.timer.Report()
	if err := checkRunning(p); err != nil {
		return err
	}
	if err := checkNotStatic(p); err != nil {
		return err
	}
	c.TargetContainer = firstNonEmpty(containerName, c.TargetContainer)
	tname, err := targetContainer(p, c.TargetContainer)
	if err != nil {
		return err
	}
	ec, err := b.ephemeralContainer(p, c, tname)
	if err != nil {
		return err
	}
	if b.opts.DryRun {
		return printContainer(streams.Out, ec)
	}
	if b.opts.Reuse {
		if name, ok := reusable(p, ec); ok {
			fmt.Fprintf(b.opts.Log, "reusing debug container %s in pod %s\n", name, p.Name)
			if b.hub != nil {
				b.hub.expect(p.Name, name)
			}
			return b.session(ctx, p, name, c, streams)
		}
	}
	if b.hub != nil {
		b.hub.expect(p.Name, ec.Name)
		// From here the session needs the pod's name alone: let the
		// decoded pod go while the patch waits its turn.
		p = trimPod(p, nil)
	}
	// Ephemeral containers cannot be removed: ask first whether the user
	// can reach one.
	if err := b.preflight(ctx, p, c.Stdin); err != nil {
		return err
	}
	p, err = b.addToPod(ctx, p, ec)
	if err != nil {
		return err
	}
	b.timer.Mark("patch")
	fmt.Fprintf(b.opts.Log, "added debug container %s to pod %s (target %s)\n", ec.Name, p.Name, ec.TargetContainerName)
	return b.session(ctx, p, ec.Name, c, streams)
}

// session waits for the container, attaches to it or streams its output,
// and returns its exit code. An interactive session attaches as soon as
// the container runs (attachEarly), before the pod status says so.
func (b *call) session(ctx context.Context, p *corev1.Pod, name string, c spec.Container, streams session.Streams) error {
	if c.Stdin {
		q, detached, err := b.attachEarly(ctx, p, name, c, streams)
		switch {
		case errors.Is(err, errEnded):
			p = q // over before the attach: show its output below
		case err != nil:
			return err
		case detached:
			fmt.Fprintf(b.opts.Log, "detached: %s keeps running; reattach with: ephem attach pod/%s/%s -n %s\n", name, p.Name, name, p.Namespace)
			return nil
		default:
			b.timer.Mark("session")
			defer b.timer.Mark("terminated")
			return b.exitCode(ctx, q, name)
		}
	}
	p, err := b.waitFor(ctx, p, name, "running", running)
	if err != nil {
		return err
	}
	b.timer.Mark("running")
	s, _ := containerStatus(p, name)
	reportSession(ctx, p, name, s.ImageID)
	switch {
	case s.State.Terminated != nil:
		// Already over: show what it printed.
		if err := b.logs(ctx, p, name, streams.Out, false); err != nil {
			return err
		}
	default:
		out := &firstWrite{w: streams.Out, first: func() { b.timer.Mark("first output") }}
		return b.followToExit(ctx, p, name, out)
	}
	b.timer.Mark("session")
	defer b.timer.Mark("terminated")
	return b.exitCode(ctx, p, name)
}

// followToExit streams the output of running container name to out and
// returns its exit code. The pod is watched for the end meanwhile: the
// kubelet closes a followed log a while after the process ends, and learns
// the exit code at its next relist; waiting for both at once rather than
// one after the other saves up to a second. The watch has no deadline
// while the output streams (a capture may run for hours); --timeout counts
// from the end of the output.
func (b *call) followToExit(ctx context.Context, p *corev1.Pod, name string, out io.Writer) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type ended struct {
		p   *corev1.Pod
		err error
	}
	done := make(chan ended, 1)
	go func() {
		q, err := b.waitUntil(wctx, p, name, "terminated", terminated)
		done <- ended{q, err}
	}()
	if err := b.logs(ctx, p, name, out, true); err != nil {
		return err
	}
	b.timer.Mark("session")
	defer b.timer.Mark("terminated")
	t := time.NewTimer(b.opts.Timeout)
	defer t.Stop()
	var e ended
	select {
	case e = <-done:
	case <-t.C:
		cancel()
		e = <-done
	}
	if e.err != nil {
		return e.err
	}
	return exitOf(e.p, name)
}

// exitCode waits for the container to end and returns its code.
func (b *call) exitCode(ctx context.Context, p *corev1.Pod, name string) error {
	p, err := b.waitFor(ctx, p, name, "terminated", terminated)
	if err != nil {
		return err
	}
	return exitOf(p, name)
}

// exitOf is the exit code of terminated container name of p, as an error.
func exitOf(p *corev1.Pod, name string) error {
	s, _ := containerStatus(p, name)
	if code := int(s.State.Terminated.ExitCode); code != 0 {
		return &runtime.ExitError{Code: code}
	}
	return nil
}

// printContainer writes ec as YAML (--dry-run).
func printContainer(w io.Writer, ec *corev1.EphemeralContainer) error {
	y, err := yaml.Marshal(ec)
	if err != nil {
		return fmt.Errorf("encoding the container: %w", err)
	}
	_, err = w.Write(y)
	return err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// ephemeral returns p's ephemeral container called name.
func ephemeral(p *corev1.Pod, name string) (*corev1.EphemeralContainer, bool) {
	for i := range p.Spec.EphemeralContainers {
		if p.Spec.EphemeralContainers[i].Name == name {
			return &p.Spec.EphemeralContainers[i], true
		}
	}
	return nil, false
}

// reportSession tells the caller's session report (runtime.ReportFrom)
// which pod and container the session runs in, and its image's digest from
// the container status's imageID ("repo@sha256:..." or "sha256:...").
func reportSession(ctx context.Context, p *corev1.Pod, name, imageID string) {
	rep := runtime.ReportFrom(ctx)
	resolved := fmt.Sprintf("pod %s/%s container %s", p.Namespace, p.Name, name)
	if ec, ok := ephemeral(p, name); ok && ec.TargetContainerName != "" {
		resolved = fmt.Sprintf("pod %s/%s container %s (debug container %s)", p.Namespace, p.Name, ec.TargetContainerName, name)
	}
	rep.SetResolvedTarget(resolved)
	rep.SetSessionID("pod/" + p.Name + "/" + name)
	if i := strings.LastIndex(imageID, "@"); i >= 0 {
		imageID = imageID[i+1:]
	}
	if strings.HasPrefix(imageID, "sha256:") {
		rep.SetImageDigest(imageID)
	}
}
