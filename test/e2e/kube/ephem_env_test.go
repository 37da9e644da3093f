//go:build e2e_kube

package kube_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// envPod creates a running pod whose container "app" has a literal
// variable, one from a ConfigMap key, one from a Secret key, every key of
// another ConfigMap through envFrom, and a PATH of its own.
func envPod(ctx context.Context, t *testing.T, ns string) string {
	t.Helper()
	cms := []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "env-key", Namespace: ns}, Data: map[string]string{"db": "db.shop.svc"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "env-all", Namespace: ns}, Data: map[string]string{"BULK_VAR": "bulk-value"}},
	}
	for _, cm := range cms {
		if _, err := cluster.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "env-secret", Namespace: ns}, StringData: map[string]string{"token": "s3cret"}}
	if _, err := cluster.Client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := func(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }
	f := false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "envpod", Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: cluster.Image("distroless"),
				Env: []corev1.EnvVar{
					{Name: "LITERAL_VAR", Value: "literal-value"},
					{Name: "PATH", Value: "/target/only/bin"},
					{Name: "CM_VAR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("env-key"), Key: "db"}}},
					{Name: "SECRET_VAR", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("env-secret"), Key: "token"}}},
				},
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("env-all")}}},
			}},
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  &f,
		},
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.WaitPod(ctx, ns, pod.Name, "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }); err != nil {
		t.Fatal(err)
	}
	return pod.Name
}

const envScript = `echo "literal=$LITERAL_VAR"; echo "cm=$CM_VAR"; echo "secret=$SECRET_VAR"; echo "bulk=$BULK_VAR"; echo "path=$PATH"; which wget`

// TestEphemEnvFromTarget: with --env-from-target the debug container sees
// the target container's literal, ConfigMap, Secret and envFrom variables
// as the kubelet resolves them, -e overrides them and the image's PATH
// still finds the tools; without the flag it sees none of them.
func TestEphemEnvFromTarget(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	pod := envPod(ctx, t, ns)
	busybox := cluster.Image("busybox")
	all := []string{"literal=literal-value\n", "cm=db.shop.svc\n", "secret=s3cret\n", "bulk=bulk-value\n", "bin/wget\n"}

	out := mustEphem(t, ns, "debug", "pod/"+pod, "--env-from-target", "--image", busybox, "--", "sh", "-c", envScript)
	for _, want := range all {
		if !strings.Contains(out, want) {
			t.Errorf("--env-from-target: output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "/target/only") {
		t.Errorf("the target's PATH was taken:\n%s", out)
	}

	out = mustEphem(t, ns, "debug", "pod/"+pod, "--env-from-target", "-e", "CM_VAR=flag", "--image", busybox, "--", "sh", "-c", envScript)
	if !strings.Contains(out, "cm=flag\n") || !strings.Contains(out, "literal=literal-value\n") {
		t.Errorf("-e CM_VAR=flag after --env-from-target:\n%s", out)
	}

	out = mustEphem(t, ns, "debug", "pod/"+pod, "--image", busybox, "--", "sh", "-c", envScript)
	for _, none := range []string{"literal=\n", "cm=\n", "secret=\n", "bulk=\n"} {
		if !strings.Contains(out, none) {
			t.Errorf("without --env-from-target, want %q:\n%s", none, out)
		}
	}

	// A copy's debug container gets it too.
	out = mustEphem(t, ns, "debug", "pod/"+pod, "--copy-to", "envpod-copy", "--env-from-target", "--image", busybox, "--", "sh", "-c", envScript)
	for _, want := range all {
		if !strings.Contains(out, want) {
			t.Errorf("--copy-to --env-from-target: output lacks %q:\n%s", want, out)
		}
	}

	r := ephem(t, ns, "debug", "node/"+firstNode(ctx, t), "--env-from-target", "--image", busybox, "--", "true")
	if r.Code != 64 || !strings.Contains(r.Stderr, "node targets have no target container") {
		t.Errorf("node target: exit %d %q, want 64 saying node targets have no target container", r.Code, r.Stderr)
	}
}
