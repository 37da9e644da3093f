//go:build e2e_kube

package kube_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ephem-dev/ephem/test/e2e/kube"
)

var (
	getOpts  = metav1.GetOptions{}
	listOpts = metav1.ListOptions{}
)

// TestVersions checks that server and kubectl are the pinned release.
func TestVersions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, err := cluster.Kubectl(ctx, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Client Version: v1.37.2", "Server Version: v1.37.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl version lacks %q:\n%s", want, out)
		}
	}
	node, err := cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(node.Items) != 1 || node.Items[0].Status.NodeInfo.KubeletVersion != "v1.37.2" ||
		!strings.HasPrefix(node.Items[0].Status.NodeInfo.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("nodes = %+v, want one v1.37.2 kubelet on containerd", node.Items)
	}
}

// TestPodSecurityRestricted checks that PodSecurity admission enforces the
// restricted level in a labelled namespace, and admits a compliant pod.
func TestPodSecurityRestricted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	priv := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: cluster.Image("busybox"), Command: []string{"sleep", "3600"},
			SecurityContext: &corev1.SecurityContext{Privileged: &priv},
		}}},
	}
	_, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted`) ||
		!strings.Contains(err.Error(), "privileged") {
		t.Fatalf("creating a privileged pod in a restricted namespace: err = %v, want Forbidden by PodSecurity", err)
	}

	// A pod that meets the restricted level is admitted and runs.
	no, yes, nobody := false, true, int64(65534)
	ok := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "compliant"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &nobody,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "server", Image: cluster.Image("distroless"),
				Env: []corev1.EnvVar{{Name: "PORT", Value: "8080"}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, ok, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a compliant pod in a restricted namespace: %v", err)
	}
	if _, err := cluster.WaitPod(ctx, ns, "compliant", "running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning
	}); err != nil {
		t.Fatal(err)
	}
}

// TestErrImagePull checks that the kubelet really pulls from the local
// registry: an image missing there fails with ErrImagePull.
func TestErrImagePull(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	image := cluster.Registry + "/ephem/does-not-exist:test"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "missing-image"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	reason, msg, err := cluster.WaitWaitingReason(ctx, ns, pod.Name, "ErrImagePull")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, image) || !strings.Contains(msg, "not found") {
		t.Errorf("%s message = %q, want it to name %s and say not found", reason, msg, image)
	}
}

// TestPodNetwork checks pod-to-pod traffic over the cluster's bridge, and
// that pods have no route off the machine.
func TestPodNetwork(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	server, err := cluster.DeployDistroless(ctx, ns, "pyserv")
	if err != nil {
		t.Fatal(err)
	}
	web, err := cluster.DeployNginxLike(ctx, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(cmd string) (string, error) {
		out, _, err := cluster.Kubectl(ctx, "-n", ns, "exec", web.Pod.Name, "-c", web.Container, "--", "sh", "-c", cmd)
		return out, err
	}
	if out, err := exec("wget -qO- http://localhost:80/"); err != nil || !strings.Contains(out, kube.NginxLikeReply) {
		t.Errorf("nginx-like workload on localhost: %q, %v", out, err)
	}
	if out, err := exec("wget -qO- http://" + server.Pod.Status.PodIP + ":80/"); err != nil || !strings.Contains(out, kube.Reply) {
		t.Errorf("distroless workload at %s from another pod: %q, %v", server.Pod.Status.PodIP, out, err)
	}
	routes, err := exec("ip route")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(routes, "default") {
		t.Errorf("pod has a default route:\n%s", routes)
	}
	if out, err := exec("wget -qO- http://192.0.2.1/ 2>&1; true"); err != nil || !strings.Contains(out, "unreachable") {
		t.Errorf("wget off the machine: %q, %v; want network unreachable", out, err)
	}
}
