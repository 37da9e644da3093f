package kube

import (
	"context"
	"errors"
	"fmt"

	"github.com/ephem-dev/ephem/pkg/runtime"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// Sentinels for a debug container that cannot start.
var (
	// ErrImagePull marks an image the kubelet could not pull.
	ErrImagePull = runtime.ErrImagePull
	// ErrCreate marks a container the runtime could not create.
	ErrCreate = runtime.ErrCreate
	// ErrTimeout marks a container that did not start in time.
	ErrTimeout = runtime.ErrTimeout
)

// failFast are the Waiting reasons that will not resolve by waiting.
var failFast = map[string]error{
	"ErrImagePull":               ErrImagePull,
	"ImagePullBackOff":           ErrImagePull,
	"ErrImageNeverPull":          ErrImagePull,
	"InvalidImageName":           runtime.ErrInvalidSpec,
	"CreateContainerConfigError": ErrCreate,
	"CreateContainerError":       ErrCreate,
	"RunContainerError":          ErrCreate,
}

// containerStatus returns name's status among p's ephemeral containers.
func containerStatus(p *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, s := range p.Status.EphemeralContainerStatuses {
		if s.Name == name {
			return s, true
		}
	}
	return corev1.ContainerStatus{}, false
}

// waitFor watches pod until cond says done, starting from p. It reports
// new Waiting reasons of container name on the log, fails fast on reasons
// that will not resolve, and gives up after the backend's timeout.
func (b *call) waitFor(ctx context.Context, p *corev1.Pod, name, what string, cond func(corev1.ContainerStatus) bool) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	return b.waitUntil(ctx, p, name, what, cond)
}

// waitUntil is waitFor bounded by ctx alone: its end is the timeout.
func (b *call) waitUntil(ctx context.Context, p *corev1.Pod, name, what string, cond func(corev1.ContainerStatus) bool) (*corev1.Pod, error) {
	lastReason := ""
	check := func(p *corev1.Pod) (bool, error) {
		s, ok := containerStatus(p, name)
		if !ok {
			return false, nil
		}
		if cond(s) {
			return true, nil
		}
		if w := s.State.Waiting; w != nil && w.Reason != lastReason {
			lastReason = w.Reason
			if sentinel, bad := failFast[w.Reason]; bad {
				return false, fmt.Errorf("%w: debug container %s: %s: %s", sentinel, name, w.Reason, w.Message)
			}
			fmt.Fprintf(b.opts.Log, "%s: %s\n", name, w.Reason)
		}
		return false, nil
	}
	if done, err := check(p); done || err != nil {
		return p, err
	}
	if b.hub != nil && b.hub.has(p.Name) {
		q, err := b.hub.wait(ctx, p, check)
		switch {
		case errors.Is(err, errHubDown):
			p = q // watch the pod itself from here
		case err != nil && ctx.Err() != nil && !errors.Is(err, ErrImagePull):
			return q, b.timeoutError(name, what, lastReason)
		default:
			return q, err
		}
	}
	for {
		w, err := b.client.WatchPods(ctx, p.Namespace, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", p.Name).String(),
			ResourceVersion: p.ResourceVersion,
		})
		if err != nil {
			if ctx.Err() != nil {
				return p, b.timeoutError(name, what, lastReason)
			}
			return p, apiFailure(err, "watching pod %s", p.Name)
		}
		p2, err := b.drain(ctx, w, p, check)
		w.Stop()
		if p2 != nil {
			p = p2
		}
		if !errors.Is(err, errRewatch) {
			if err == nil {
				return p, nil
			}
			if ctx.Err() != nil && !errors.Is(err, ErrImagePull) {
				return p, b.timeoutError(name, what, lastReason)
			}
			return p, err
		}
	}
}

var errRewatch = errors.New("watch closed")

// drain reads watch events until cond holds, an error, or the watch ends.
func (b *call) drain(ctx context.Context, w watch.Interface, last *corev1.Pod, check func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return last, errRewatch
			}
			switch ev.Type {
			case watch.Deleted:
				return last, fmt.Errorf("%w: pod %s was deleted", runtime.ErrTargetGone, last.Name)
			case watch.Error:
				// Too old a resource version and the like: list again.
				p, err := b.client.GetPod(ctx, last.Namespace, last.Name)
				if err != nil {
					return last, fmt.Errorf("%w: pod %s: %w", runtime.ErrTargetGone, last.Name, err)
				}
				last = p
				if done, err := check(p); done || err != nil {
					return p, err
				}
				return last, errRewatch
			case watch.Added, watch.Modified:
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				last = p
				if done, err := check(p); done || err != nil {
					return p, err
				}
			}
		}
	}
}

func (b *call) timeoutError(name, what, reason string) error {
	if reason == "" {
		reason = "no status yet"
	}
	return fmt.Errorf("%w: debug container %s was not %s after %v (last state: %s): raise --timeout or check 'kubectl describe pod'", ErrTimeout, name, what, b.opts.Timeout, reason)
}

func running(s corev1.ContainerStatus) bool {
	return s.State.Running != nil || s.State.Terminated != nil
}

func terminated(s corev1.ContainerStatus) bool { return s.State.Terminated != nil }
