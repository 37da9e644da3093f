//go:build e2e_kube

package kube_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

// TestEphemRestrictedNamespace: in a namespace enforcing PodSecurity
// "restricted", the general profile is refused by the preflight with nothing
// added, and the restricted profile is admitted, runs as the target's user.
func TestEphemRestrictedNamespace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	startLockedPod(ctx, t, ns)
	r := ephem(t, ns, "debug", "pod/locked", "--image", cluster.Image("busybox"), "--", "true")
	if r.Code != 77 || !strings.Contains(r.Stderr, "use --profile restricted") || !strings.Contains(r.Stderr, "nothing was added") {
		t.Errorf("general profile: exit %d %q, want 77 suggesting --profile restricted", r.Code, r.Stderr)
	}
	if names := ephemeralNames(t, ns, "locked"); len(names) != 0 {
		t.Fatalf("the refused preflight added %v", names)
	}
	out := mustEphem(t, ns, "debug", "pod/locked", "--profile", "restricted", "--image", cluster.Image("busybox"), "--", "sh", "-c", "id -u; wget -qO- localhost:8080")
	if !strings.HasPrefix(out, "1000\n") || !strings.Contains(out, "OK - GET") {
		t.Errorf("restricted profile: %q, want uid 1000 and the server's reply", out)
	}
}

// TestEphemRBAC: a user who may read pods but not add ephemeral containers
// gets the RBAC error before anything changes.
func TestEphemRBAC(t *testing.T) {
	ctx, ns, w := distrolessWorkload(t, "web", 4*time.Minute)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: ns}}
	if _, err := cluster.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}, Verbs: []string{"get", "list", "watch"}}}}
	if _, err := cluster.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "viewer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "viewer", Namespace: ns}}}
	if _, err := cluster.Client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, stderr, err := cluster.Kubectl(ctx, "-n", ns, "create", "token", "viewer")
	if err != nil {
		t.Fatalf("creating a token: %v: %s", err, stderr)
	}
	// A kubeconfig with the service account's token only (the admin's
	// client certificate would win over a --token).
	server, _, err := cluster.Kubectl(ctx, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := t.TempDir() + "/viewer.kubeconfig"
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " + server +
		"\n    insecure-skip-tls-verify: true\nusers:\n- name: viewer\n  user:\n    token: " + strings.TrimSpace(token) +
		"\ncontexts:\n- name: v\n  context:\n    cluster: c\n    user: viewer\n    namespace: " + ns + "\ncurrent-context: v\n"
	if err := writeFile(kubeconfig, cfg); err != nil {
		t.Fatal(err)
	}
	viewer := []string{"KUBECONFIG=" + kubeconfig}
	r := ephemEnv(t, "", viewer, "debug", "pod/"+w.Pod.Name, "--image", cluster.Image("busybox"), "--", "true")
	if r.Code != 77 || !strings.Contains(r.Stderr, "pods/ephemeralcontainers") {
		t.Errorf("viewer: exit %d %q, want 77 naming pods/ephemeralcontainers", r.Code, r.Stderr)
	}
	r = ephemEnv(t, "", viewer, "debug", "pod/"+w.Pod.Name, "-i", "--image", cluster.Image("busybox"), "--", "true")
	if r.Code != 77 || !strings.Contains(r.Stderr, "pods/attach") {
		t.Errorf("viewer with -i: exit %d %q, want 77 naming pods/attach", r.Code, r.Stderr)
	}
	if names := ephemeralNames(t, ns, w.Pod.Name); len(names) != 0 {
		t.Errorf("refused runs added %v", names)
	}
}

// startLockedPod starts pod "locked" in ns as PodSecurity "restricted"
// admits it: the distroless server as UID 1000, no privilege escalation,
// no capabilities, the runtime's seccomp profile; and waits until it runs.
// It returns that UID.
// lockedSpec is a pod that PodSecurity "restricted" admits: the
// distroless server on port 8080 as uid, no privilege, no capability.
func lockedSpec(uid int64) corev1.PodSpec {
	f, tr := false, true
	return corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &tr, RunAsUser: &uid, RunAsGroup: &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{
			Name: "app", Image: cluster.Image("distroless"), Env: []corev1.EnvVar{{Name: "PORT", Value: "8080"}},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &f,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
		}},
		TerminationGracePeriodSeconds: new(int64),
		AutomountServiceAccountToken:  &f,
	}
}

func startLockedPod(ctx context.Context, t *testing.T, ns string) int64 {
	t.Helper()
	uid := int64(1000)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "locked", Namespace: ns}, Spec: lockedSpec(uid)}
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.WaitPod(ctx, ns, "locked", "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }); err != nil {
		t.Fatal(err)
	}
	return uid
}

// TestEphemFanOutRestricted: a fan-out over the replicas of a Deployment in
// a namespace enforcing PodSecurity "restricted": the general profile is
// refused for every pod, each saying that nothing was added and what to
// use, and nothing is added to any; the restricted profile then runs in
// each.
func TestEphemFanOutRestricted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	labels := map[string]string{"app": "locked"}
	three := int32(3)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "locked", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: &three, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: lockedSpec(1000)}},
	}
	if _, err := cluster.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.WaitDeployment(ctx, ns, "locked"); err != nil {
		t.Fatal(err)
	}
	pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=locked"})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("pods: %d %v", len(pods.Items), err)
	}
	r := ephem(t, ns, "debug", "-l", "app=locked", "--image", cluster.Image("busybox"), "--", "true")
	if r.Code != 77 || !strings.Contains(r.Stderr, "3 of 3 pods failed") || strings.Count(r.Stderr, "use --profile restricted") != 3 {
		t.Errorf("general profile over 3 replicas: exit %d %q, want 77 and three refusals suggesting --profile restricted", r.Code, r.Stderr)
	}
	for _, p := range pods.Items {
		if !strings.Contains(r.Stderr, "nothing was added to pod "+p.Name) {
			t.Errorf("no refusal for pod %s in %q", p.Name, r.Stderr)
		}
		if names := ephemeralNames(t, ns, p.Name); len(names) != 0 {
			t.Errorf("the refused preflight added %v to %s", names, p.Name)
		}
	}
	out := mustEphem(t, ns, "debug", "-l", "app=locked", "--profile", "restricted", "--image", cluster.Image("busybox"), "--", "id", "-u")
	for _, p := range pods.Items {
		if !strings.Contains(out, "["+p.Name+"] 1000\n") {
			t.Errorf("restricted profile: no uid 1000 from %s in %q", p.Name, out)
		}
	}
}
