package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// resolvePods returns the running pods ref names: the pod itself, one pod
// of a workload (all of them with AllPods), or every pod the selector
// matches.
func (b *call) resolvePods(ctx context.Context, ref target.Ref) ([]*corev1.Pod, error) {
	if ref.Scheme == target.SchemePod && ref.Name != "" {
		p, err := b.client.GetPod(ctx, b.namespace, ref.Name)
		if err != nil {
			return nil, b.getError(err, "pod", ref.Name)
		}
		// A copy needs no running original (kubectl copies a failed pod).
		if b.opts.Copy == nil {
			if err := checkRunning(p); err != nil {
				return nil, err
			}
		}
		return []*corev1.Pod{p}, nil
	}
	sel, what, err := b.selectorFor(ctx, ref)
	if err != nil {
		return nil, err
	}
	list, err := b.client.ListPods(ctx, b.namespace, sel)
	if err != nil {
		return nil, b.getError(err, "pods", sel)
	}
	b.listed = podListing{selector: sel, resourceVersion: list.ResourceVersion}
	var pods []*corev1.Pod
	for i := range list.Items {
		if list.Items[i].Status.Phase == corev1.PodRunning && list.Items[i].DeletionTimestamp == nil {
			pods = append(pods, &list.Items[i])
		}
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%w: %s has no running pod in namespace %s", target.ErrNotFound, what, b.namespace)
	}
	// Ready pods first, then the newest, as kubectl picks one.
	sort.SliceStable(pods, func(i, j int) bool {
		ri, rj := podReady(pods[i]), podReady(pods[j])
		if ri != rj {
			return ri
		}
		return pods[j].CreationTimestamp.Before(&pods[i].CreationTimestamp)
	})
	if b.opts.AllPods || (ref.Name == "" && b.opts.Selector != "") {
		sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
		return pods, nil
	}
	return pods[:1], nil
}

// onePod resolves ref to exactly one pod.
func (b *call) onePod(ctx context.Context, ref target.Ref) (*corev1.Pod, error) {
	saved := b.opts.AllPods
	b.opts.AllPods = false
	defer func() { b.opts.AllPods = saved }()
	pods, err := b.resolvePods(ctx, ref)
	if err != nil {
		return nil, err
	}
	return pods[0], nil
}

// selectorFor returns the label selector of a workload reference or -l.
func (b *call) selectorFor(ctx context.Context, ref target.Ref) (string, string, error) {
	if ref.Name == "" {
		if b.opts.Selector == "" {
			return "", "", fmt.Errorf("%w: name a pod or workload, or pass -l SELECTOR", target.ErrInvalid)
		}
		return b.opts.Selector, "selector " + b.opts.Selector, nil
	}
	what := ref.Scheme + "/" + ref.Name
	switch ref.Scheme {
	case target.SchemeDeployment, target.SchemeStatefulSet, target.SchemeDaemonSet, target.SchemeReplicaSet, target.SchemeJob:
	default:
		return "", "", fmt.Errorf("%w: %s targets are not pods or workloads", target.ErrInvalid, ref.Scheme)
	}
	ls, err := b.client.WorkloadSelector(ctx, ref.Scheme, b.namespace, ref.Name)
	if err != nil {
		return "", "", b.getError(err, ref.Scheme, ref.Name)
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return "", "", fmt.Errorf("%w: %s has no usable pod selector", target.ErrNotFound, what)
	}
	if b.opts.Selector != "" {
		extra, err := labels.Parse(b.opts.Selector)
		if err != nil {
			return "", "", fmt.Errorf("%w: -l %q: %w", target.ErrInvalid, b.opts.Selector, err)
		}
		reqs, _ := extra.Requirements()
		sel = sel.Add(reqs...)
	}
	return sel.String(), what, nil
}

// apiFailure wraps a failed API call: unreachable when the API server could
// not be reached, an OS error otherwise.
func apiFailure(err error, format string, args ...any) error {
	sentinel := runtime.ErrOS
	var netErr net.Error
	if errors.As(err, &netErr) || utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) {
		sentinel = target.ErrUnreachable
	}
	return fmt.Errorf("%w: %s: %w", sentinel, fmt.Sprintf(format, args...), err)
}

// getError turns an API error on a named object into ephem's sentinels.
func (b *call) getError(err error, kind, name string) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: no %s %q in namespace %s: check the name and -n", target.ErrNotFound, kind, name, b.namespace)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: %s", runtime.ErrPermission, apiMessage(err))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: the API server did not accept your credentials: %s", runtime.ErrPermission, apiMessage(err))
	default:
		return fmt.Errorf("%w: reading %s %q: %w", target.ErrUnreachable, kind, name, err)
	}
}

func checkRunning(p *corev1.Pod) error {
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("%w: pod %s is %s, not Running: ephemeral containers need a running pod", target.ErrNotFound, p.Name, p.Status.Phase)
	}
	return nil
}

// mirrorAnnotation marks the API server's mirror of a static pod.
const mirrorAnnotation = "kubernetes.io/config.mirror"

// checkNotStatic refuses a static pod: the API server takes an ephemeral
// container into its mirror, but the kubelet never starts it
// (kubernetes#113935), and it can never be removed.
func checkNotStatic(p *corev1.Pod) error {
	if _, ok := p.Annotations[mirrorAnnotation]; !ok {
		return nil
	}
	return fmt.Errorf("%w: pod %s is a static pod (the mirror of a manifest on node %s): the kubelet never starts "+
		"ephemeral containers in it (kubernetes#113935), so nothing was added; debug a copy with --copy-to NAME, "+
		"or the node with node/%s", runtime.ErrUnsupported, p.Name, p.Spec.NodeName, p.Spec.NodeName)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// apiMessage is the server's message of an API error.
func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok && s.Status().Message != "" {
		return s.Status().Message
	}
	return err.Error()
}
