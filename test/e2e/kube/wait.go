package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var listAll = metav1.ListOptions{}

// pollInterval is how often the wait helpers look again.
const pollInterval = 200 * time.Millisecond

// Poll calls check every 200 ms until it reports done, returns an error, or
// ctx ends; what describes the wait in the timeout error, which also carries
// the last state check reported.
func Poll(ctx context.Context, what string, check func(ctx context.Context) (done bool, state string, err error)) error {
	last := "not checked yet"
	for {
		done, state, err := check(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if done {
			return nil
		}
		if state != "" {
			last = state
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last state: %s)", what, ctx.Err(), last)
		case <-time.After(pollInterval):
		}
	}
}

// WaitPod polls the pod ns/name until cond accepts it, and returns it.
func (c *Cluster) WaitPod(ctx context.Context, ns, name, what string, cond func(*corev1.Pod) bool) (*corev1.Pod, error) {
	var pod *corev1.Pod
	err := Poll(ctx, fmt.Sprintf("pod %s/%s %s", ns, name, what), func(ctx context.Context) (bool, string, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		pod = p
		return cond(p), podState(p), nil
	})
	return pod, err
}

// PodReady reports whether the pod's Ready condition is true.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// EphemeralStatus returns the status of the pod's ephemeral container name.
func EphemeralStatus(p *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, s := range p.Status.EphemeralContainerStatuses {
		if s.Name == name {
			return s, true
		}
	}
	return corev1.ContainerStatus{}, false
}

// WaitEphemeralTerminated waits until the ephemeral container name of pod
// ns/pod has terminated, and returns its final state.
func (c *Cluster) WaitEphemeralTerminated(ctx context.Context, ns, pod, name string) (*corev1.ContainerStateTerminated, error) {
	p, err := c.WaitPod(ctx, ns, pod, "ephemeral container "+name+" terminated", func(p *corev1.Pod) bool {
		s, ok := EphemeralStatus(p, name)
		return ok && s.State.Terminated != nil
	})
	if err != nil {
		return nil, err
	}
	s, _ := EphemeralStatus(p, name)
	return s.State.Terminated, nil
}

// WaitWaitingReason waits until a container of pod ns/pod is waiting with
// one of reasons, and returns that reason and its message.
func (c *Cluster) WaitWaitingReason(ctx context.Context, ns, pod string, reasons ...string) (reason, message string, err error) {
	_, err = c.WaitPod(ctx, ns, pod, fmt.Sprintf("a container waiting with reason %v", reasons), func(p *corev1.Pod) bool {
		for _, s := range p.Status.ContainerStatuses {
			if w := s.State.Waiting; w != nil {
				for _, r := range reasons {
					if w.Reason == r {
						reason, message = w.Reason, w.Message
						return true
					}
				}
			}
		}
		return false
	})
	return reason, message, err
}

func podState(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.ContainerStatuses...), p.Status.EphemeralContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil:
			s += fmt.Sprintf(" %s:waiting(%s: %s)", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Running != nil:
			s += fmt.Sprintf(" %s:running(ready=%t)", cs.Name, cs.Ready)
		case cs.State.Terminated != nil:
			s += fmt.Sprintf(" %s:terminated(%d %s)", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
		}
	}
	return s
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
