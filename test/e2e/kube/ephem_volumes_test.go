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
)

// volumePod creates a running pod whose container "app" mounts a
// ConfigMap at /etc/app, a Secret at /etc/creds and an emptyDir read-only
// at /scratch (and reads the config's path from its environment), beside a
// container "sidecar" that mounts none of them. mutate changes the pod
// before it is created.
func volumePod(ctx context.Context, t *testing.T, ns, name string, mutate func(*corev1.Pod)) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-config", Namespace: ns}, Data: map[string]string{"config": "listen=127.0.0.1:8080\n"}}
	if _, err := cluster.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-creds", Namespace: ns}, StringData: map[string]string{"token": "s3cret-token"}}
	if _, err := cluster.Client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	f := false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-creds"}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			Containers: []corev1.Container{
				{Name: "app", Image: cluster.Image("distroless"),
					Env: []corev1.EnvVar{{Name: "APP_CONFIG", Value: "/etc/app/config"}},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "config", MountPath: "/etc/app", ReadOnly: true},
						{Name: "creds", MountPath: "/etc/creds", ReadOnly: true},
						{Name: "scratch", MountPath: "/scratch", ReadOnly: true},
					}},
				{Name: "sidecar", Image: cluster.Image("distroless"), Command: []string{"/server", "-addr", "127.0.0.1:8081"}},
			},
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  &f,
		},
	}
	if mutate != nil {
		mutate(pod)
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.WaitPod(ctx, ns, name, "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }); err != nil {
		t.Fatal(err)
	}
}

// TestEphemMountTargetVolumes: with --mount-target-volumes the debug
// container reads the target's ConfigMap and Secret where the application
// reads them (with --env-from-target, by the path the application's own
// variable names), a read-only mount stays read-only, and without the flag
// nothing is there. Without --target in a pod of two containers it is a
// usage error, and a subPathExpr mount is refused naming the volume, with
// nothing added to the pod.
func TestEphemMountTargetVolumes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	volumePod(ctx, t, ns, "vol", nil)
	busybox := cluster.Image("busybox")

	out := mustEphem(t, ns, "debug", "pod/vol", "--target", "app", "--mount-target-volumes", "--image", busybox, "--", "cat", "/etc/app/config")
	if out != "listen=127.0.0.1:8080\n" {
		t.Errorf("cat /etc/app/config = %q", out)
	}
	script := `cat "$APP_CONFIG" /etc/creds/token; echo; touch /scratch/x 2>&1 || echo read-only`
	out = mustEphem(t, ns, "debug", "pod/vol", "--target", "app", "--mount-target-volumes", "--env-from-target", "--image", busybox, "--", "sh", "-c", script)
	for _, want := range []string{"listen=127.0.0.1:8080\n", "s3cret-token\n", "Read-only file system", "read-only\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("with --env-from-target: output lacks %q:\n%s", want, out)
		}
	}
	// pod/NAME/CONTAINER names the target as --target does.
	if out := mustEphem(t, ns, "debug", "pod/vol/app", "--mount-target-volumes", "--image", busybox, "--", "cat", "/etc/creds/token"); out != "s3cret-token" {
		t.Errorf("pod/vol/app: cat /etc/creds/token = %q", out)
	}
	r := ephem(t, ns, "debug", "pod/vol", "--target", "app", "--image", busybox, "--", "ls", "/etc/app/config")
	if r.Code == 0 {
		t.Errorf("without --mount-target-volumes /etc/app/config exists: %q", r.Stdout)
	}
	before := len(ephemeralNames(t, ns, "vol"))

	r = ephem(t, ns, "debug", "pod/vol", "--mount-target-volumes", "--image", busybox, "--", "true")
	if r.Code != 64 || !strings.Contains(r.Stderr, "name the one whose volumes to mount with --target") {
		t.Errorf("two containers, no --target: exit %d %q, want 64", r.Code, r.Stderr)
	}

	volumePod(ctx, t, ns, "expr", func(p *corev1.Pod) {
		p.Name = "expr"
		app := &p.Spec.Containers[0]
		app.Env = append(app.Env, corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}})
		app.VolumeMounts[2] = corev1.VolumeMount{Name: "scratch", MountPath: "/scratch", SubPathExpr: "$(POD_NAME)"}
	})
	r = ephem(t, ns, "debug", "pod/expr", "--target", "app", "--mount-target-volumes", "--image", busybox, "--", "true")
	if r.Code != 69 || !strings.Contains(r.Stderr, `volume "scratch" at /scratch with subPathExpr $(POD_NAME)`) {
		t.Errorf("subPathExpr: exit %d %q, want 69 naming the volume", r.Code, r.Stderr)
	}
	if names := ephemeralNames(t, ns, "expr"); len(names) != 0 {
		t.Errorf("a refused --mount-target-volumes added %v", names)
	}
	if after := len(ephemeralNames(t, ns, "vol")); after != before {
		t.Errorf("the refused run added a container to pod vol: %d -> %d", before, after)
	}
}
