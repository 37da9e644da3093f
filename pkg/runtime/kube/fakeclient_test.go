package kube

import (
	"context"
	"io"
	"net/url"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// clientset adapts client-go's clientset (the fake one, in tests) to Client.
type clientset struct{ cs kubernetes.Interface }

var _ Client = clientset{}

func (c clientset) GetPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	return c.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
}

func (c clientset) ListPods(ctx context.Context, ns, selector string) (*corev1.PodList, error) {
	return c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
}

func (c clientset) WatchPods(ctx context.Context, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	return c.cs.CoreV1().Pods(ns).Watch(ctx, opts)
}

func (c clientset) CreatePod(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	return c.cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
}

func (c clientset) DeletePod(ctx context.Context, ns, name string) error {
	return c.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
}

func (c clientset) PatchEphemeralContainers(ctx context.Context, ns, name string, patch []byte) (*corev1.Pod, error) {
	return c.cs.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers")
}

func (c clientset) PodLogs(ctx context.Context, ns, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.cs.CoreV1().Pods(ns).GetLogs(name, opts).Stream(ctx)
}

func (c clientset) AttachURL(ns, name string, _ *corev1.PodAttachOptions) *url.URL {
	return &url.URL{Path: "/api/v1/namespaces/" + ns + "/pods/" + name + "/attach"}
}

func (c clientset) ExecURL(ns, name string, _ *corev1.PodExecOptions) *url.URL {
	return &url.URL{Path: "/api/v1/namespaces/" + ns + "/pods/" + name + "/exec"}
}

func (c clientset) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	return c.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

func (c clientset) WorkloadSelector(ctx context.Context, kind, ns, name string) (*metav1.LabelSelector, error) {
	apps := c.cs.AppsV1()
	switch kind {
	case "deployment":
		o, err := apps.Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return o.Spec.Selector, nil
	case "statefulset":
		o, err := apps.StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return o.Spec.Selector, nil
	case "daemonset":
		o, err := apps.DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return o.Spec.Selector, nil
	case "replicaset":
		o, err := apps.ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return o.Spec.Selector, nil
	default:
		o, err := c.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return o.Spec.Selector, nil
	}
}

func (c clientset) Allowed(ctx context.Context, attr *authv1.ResourceAttributes) (bool, error) {
	r, err := c.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
		&authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attr}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}
