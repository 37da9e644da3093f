package kube

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sync"

	"github.com/ephem-dev/ephem/pkg/target"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Client is the subset of the Kubernetes API the backend uses. Keeping it
// this small keeps client-go's full clientset, and the start-up cost of
// registering every API group, out of ephem: every ephem process, the
// local engine's included, would pay it.
type Client interface {
	GetPod(ctx context.Context, ns, name string) (*corev1.Pod, error)
	ListPods(ctx context.Context, ns, selector string) (*corev1.PodList, error)
	WatchPods(ctx context.Context, ns string, opts metav1.ListOptions) (watch.Interface, error)
	CreatePod(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error)
	DeletePod(ctx context.Context, ns, name string) error
	// PatchEphemeralContainers patches the pods/ephemeralcontainers subresource.
	PatchEphemeralContainers(ctx context.Context, ns, name string, patch []byte) (*corev1.Pod, error)
	PodLogs(ctx context.Context, ns, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
	// AttachURL is the pods/attach URL for a streaming executor.
	AttachURL(ns, name string, opts *corev1.PodAttachOptions) *url.URL
	// ExecURL is the pods/exec URL for a streaming executor.
	ExecURL(ns, name string, opts *corev1.PodExecOptions) *url.URL
	GetNode(ctx context.Context, name string) (*corev1.Node, error)
	// WorkloadSelector returns the pod selector of a deployment,
	// statefulset, daemonset, replicaset or job.
	WorkloadSelector(ctx context.Context, kind, ns, name string) (*metav1.LabelSelector, error)
	// Allowed asks the API server whether the user may do attr.
	Allowed(ctx context.Context, attr *authv1.ResourceAttributes) (bool, error)
}

// codecs are the scheme of just the groups the backend reads and writes,
// built on first use: registering the types costs about half a
// millisecond, which no command that does not reach a cluster should pay.
type codecSet struct {
	codecs         serializer.CodecFactory
	parameterCodec kruntime.ParameterCodec
}

var kubeCodecs = sync.OnceValue(func() codecSet {
	scheme := kruntime.NewScheme()
	for _, add := range []func(*kruntime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, authv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	return codecSet{codecs: serializer.NewCodecFactory(scheme), parameterCodec: kruntime.NewParameterCodec(scheme)}
})

// restClient implements Client over client-go's REST client.
type restClient struct {
	core, apps, batch, authz *rest.RESTClient
}

var _ Client = (*restClient)(nil)

// NewClient returns a Client for config.
func NewClient(config *rest.Config) (Client, error) {
	mk := func(gv schema.GroupVersion, path string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(config)
		c.GroupVersion, c.APIPath = &gv, path
		c.NegotiatedSerializer = kubeCodecs().codecs.WithoutConversion()
		// Protobuf, as Kubernetes' own components speak it: a pod that
		// has been debugged often carries dozens of ephemeral containers
		// (they cannot be removed), and each get, patch answer and watch
		// event is the whole pod. Its generated decoder needs no
		// reflection; JSON's took ~15 ms of a session's CPU before the
		// patch (docs/benchmarks.md). Every group ephem uses is built in.
		c.ContentType = kruntime.ContentTypeProtobuf
		c.AcceptContentTypes = kruntime.ContentTypeProtobuf + "," + kruntime.ContentTypeJSON
		if c.UserAgent == "" {
			c.UserAgent = "ephem"
		}
		return rest.RESTClientFor(c)
	}
	var rc restClient
	var err error
	for _, x := range []struct {
		dst  **rest.RESTClient
		gv   schema.GroupVersion
		path string
	}{
		{&rc.core, corev1.SchemeGroupVersion, "/api"}, {&rc.apps, appsv1.SchemeGroupVersion, "/apis"},
		{&rc.batch, batchv1.SchemeGroupVersion, "/apis"}, {&rc.authz, authv1.SchemeGroupVersion, "/apis"},
	} {
		if *x.dst, err = mk(x.gv, x.path); err != nil {
			return nil, fmt.Errorf("creating the %s client: %w", x.gv, err)
		}
	}
	return &rc, nil
}

func (c *restClient) GetPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	return p, c.core.Get().Namespace(ns).Resource("pods").Name(name).Do(ctx).Into(p)
}

func (c *restClient) ListPods(ctx context.Context, ns, selector string) (*corev1.PodList, error) {
	l := &corev1.PodList{}
	return l, c.core.Get().Namespace(ns).Resource("pods").
		VersionedParams(&metav1.ListOptions{LabelSelector: selector}, kubeCodecs().parameterCodec).Do(ctx).Into(l)
}

func (c *restClient) WatchPods(ctx context.Context, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.core.Get().Namespace(ns).Resource("pods").VersionedParams(&opts, kubeCodecs().parameterCodec).Watch(ctx)
}

func (c *restClient) CreatePod(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	return out, c.core.Post().Namespace(p.Namespace).Resource("pods").Body(p).Do(ctx).Into(out)
}

func (c *restClient) DeletePod(ctx context.Context, ns, name string) error {
	zero := int64(0)
	return c.core.Delete().Namespace(ns).Resource("pods").Name(name).
		Body(&metav1.DeleteOptions{GracePeriodSeconds: &zero}).Do(ctx).Error()
}

func (c *restClient) PatchEphemeralContainers(ctx context.Context, ns, name string, patch []byte) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	return out, c.core.Patch(types.StrategicMergePatchType).Namespace(ns).Resource("pods").Name(name).
		SubResource("ephemeralcontainers").Body(patch).Do(ctx).Into(out)
}

func (c *restClient) PodLogs(ctx context.Context, ns, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.core.Get().Namespace(ns).Resource("pods").Name(name).SubResource("log").
		VersionedParams(opts, kubeCodecs().parameterCodec).Stream(ctx)
}

func (c *restClient) AttachURL(ns, name string, opts *corev1.PodAttachOptions) *url.URL {
	return c.core.Post().Namespace(ns).Resource("pods").Name(name).SubResource("attach").
		VersionedParams(opts, kubeCodecs().parameterCodec).URL()
}

func (c *restClient) ExecURL(ns, name string, opts *corev1.PodExecOptions) *url.URL {
	return c.core.Post().Namespace(ns).Resource("pods").Name(name).SubResource("exec").
		VersionedParams(opts, kubeCodecs().parameterCodec).URL()
}

func (c *restClient) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	n := &corev1.Node{}
	return n, c.core.Get().Resource("nodes").Name(name).Do(ctx).Into(n)
}

func (c *restClient) WorkloadSelector(ctx context.Context, kind, ns, name string) (*metav1.LabelSelector, error) {
	var obj interface {
		kruntime.Object
	}
	var sel func() *metav1.LabelSelector
	rc, resource := c.apps, kind+"s"
	switch kind {
	case target.SchemeDeployment:
		o := &appsv1.Deployment{}
		obj, sel = o, func() *metav1.LabelSelector { return o.Spec.Selector }
	case target.SchemeStatefulSet:
		o := &appsv1.StatefulSet{}
		obj, sel = o, func() *metav1.LabelSelector { return o.Spec.Selector }
	case target.SchemeDaemonSet:
		o := &appsv1.DaemonSet{}
		obj, sel = o, func() *metav1.LabelSelector { return o.Spec.Selector }
	case target.SchemeReplicaSet:
		o := &appsv1.ReplicaSet{}
		obj, sel = o, func() *metav1.LabelSelector { return o.Spec.Selector }
	case target.SchemeJob:
		o := &batchv1.Job{}
		obj, sel, rc = o, func() *metav1.LabelSelector { return o.Spec.Selector }, c.batch
	default:
		return nil, fmt.Errorf("unknown workload kind %q", kind)
	}
	if err := rc.Get().Namespace(ns).Resource(resource).Name(name).Do(ctx).Into(obj); err != nil {
		return nil, err
	}
	return sel(), nil
}

func (c *restClient) Allowed(ctx context.Context, attr *authv1.ResourceAttributes) (bool, error) {
	r := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attr}}
	out := &authv1.SelfSubjectAccessReview{}
	if err := c.authz.Post().Resource("selfsubjectaccessreviews").Body(r).Do(ctx).Into(out); err != nil {
		return false, err
	}
	return out.Status.Allowed, nil
}
