package kube

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Reply is what the distroless workload answers to a GET.
const Reply = "OK - GET: Request completed"

// NginxLikeReply is the page the nginx-like workload serves.
const NginxLikeReply = "nginx-like: hello from busybox httpd"

// Workload is a Deployment of one replica with its Ready pod.
type Workload struct {
	// Namespace and Name of the Deployment; its pods carry app=Name.
	Namespace, Name string
	// Container is the name of the workload's container.
	Container string
	// Pod is the Deployment's Ready pod.
	Pod *corev1.Pod
}

// DeployDistroless deploys the seed's py-serv-like workload: the shell-less
// distroless image serving Reply on port 80, in a container named
// "distroless", and waits for its pod to be Ready.
func (c *Cluster) DeployDistroless(ctx context.Context, ns, name string) (*Workload, error) {
	ctr := corev1.Container{
		Name:  "distroless",
		Image: c.Image("distroless"),
		Ports: []corev1.ContainerPort{{ContainerPort: 80}},
	}
	return c.deploy(ctx, ns, name, ctr, 2)
}

// DeployNginxLike deploys an nginx-like web server (busybox httpd with a
// shell, serving NginxLikeReply on port 80) in a container named "web", and
// waits for its pod to be Ready.
func (c *Cluster) DeployNginxLike(ctx context.Context, ns, name string) (*Workload, error) {
	ctr := corev1.Container{
		Name:    "web",
		Image:   c.Image("busybox"),
		Command: []string{"sh", "-c", "mkdir -p /www && echo '" + NginxLikeReply + "' >/www/index.html && exec httpd -f -p 80 -h /www"},
		Ports:   []corev1.ContainerPort{{ContainerPort: 80}},
	}
	// busybox httpd as PID 1 ignores SIGTERM: keep the grace period short.
	return c.deploy(ctx, ns, name, ctr, 1)
}

func (c *Cluster) deploy(ctx context.Context, ns, name string, ctr corev1.Container, grace int64) (*Workload, error) {
	ctr.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80)}},
		PeriodSeconds: 1,
	}
	labels := map[string]string{"app": name}
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{ctr},
					TerminationGracePeriodSeconds: &grace,
					AutomountServiceAccountToken:  new(bool),
				},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating deployment %s/%s: %w", ns, name, err)
	}
	pod, err := c.WaitDeployment(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return &Workload{Namespace: ns, Name: name, Container: ctr.Name, Pod: pod}, nil
}

// WaitDeployment waits until the Deployment ns/name has all its replicas
// available and returns one of its Ready pods.
func (c *Cluster) WaitDeployment(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	var pod *corev1.Pod
	err := Poll(ctx, fmt.Sprintf("deployment %s/%s to be available", ns, name), func(ctx context.Context) (bool, string, error) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", fmt.Errorf("reading deployment: %w", err)
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		state := fmt.Sprintf("available %d/%d", d.Status.AvailableReplicas, want)
		if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas < want {
			return false, state + c.podsState(ctx, ns, name), nil
		}
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, "", fmt.Errorf("listing pods: %w", err)
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.DeletionTimestamp == nil && PodReady(p) {
				pod = p
				return true, "", nil
			}
		}
		return false, state + ", no Ready pod listed yet", nil
	})
	return pod, err
}

func (c *Cluster) podsState(ctx context.Context, ns, app string) string {
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return ""
	}
	s := ""
	for i := range pods.Items {
		s += fmt.Sprintf("; pod %s: %s", pods.Items[i].Name, podState(&pods.Items[i]))
	}
	return s
}
