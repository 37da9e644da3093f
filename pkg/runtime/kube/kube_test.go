package kube

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func ptr[T any](v T) *T { return &v }

func testPod(name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:1"}, {Name: "sidecar", Image: "proxy:1"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func applied(t *testing.T, name string, c spec.Container) spec.Container {
	t.Helper()
	p, err := profile.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(&c, profile.Ephemeral); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEphemeralContainer(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	b := NewForClient(Options{}, clientset{fake.NewClientset()}, nil, "shop")
	tests := []struct {
		name string
		pod  *corev1.Pod
		c    spec.Container
		want corev1.EphemeralContainerCommon
	}{
		{
			name: "general with target",
			pod:  testPod("web"),
			c:    applied(t, "general", spec.Container{Image: "busybox", SharePID: true, Stdin: true, TTY: true, Command: []string{"sh"}}),
			want: corev1.EphemeralContainerCommon{Name: "debugger-abcde", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh"}, Stdin: true, TTY: true, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}},
		},
		{
			name: "netadmin, env, pull never",
			pod:  testPod("web"),
			c: applied(t, "netadmin", spec.Container{Image: "toolbox", PullPolicy: spec.PullNever,
				Env: []spec.EnvVar{{Name: "A", Value: "b"}}}),
			want: corev1.EphemeralContainerCommon{Name: "debugger-abcde", Image: "toolbox", ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{{Name: "A", Value: "b"}}, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}}}},
		},
		{
			name: "restricted takes a non-root target's user",
			pod: testPod("web", func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(3000))}
			}),
			c: applied(t, "restricted", spec.Container{Image: "busybox", SharePID: true}),
			want: corev1.EphemeralContainerCommon{Name: "debugger-abcde", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(3000)), RunAsNonRoot: ptr(true),
					AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}},
		},
		{
			name: "sysadmin and --user",
			pod:  testPod("web"),
			c:    applied(t, "sysadmin", spec.Container{Image: "busybox", User: "0:0"}),
			want: corev1.EphemeralContainerCommon{Name: "debugger-abcde", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				SecurityContext:          &corev1.SecurityContext{Privileged: ptr(true), RunAsUser: ptr(int64(0)), RunAsGroup: ptr(int64(0))}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ec, err := b.newCall().ephemeralContainer(tt.pod, tt.c, "app")
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if tt.c.SharePID {
				want.Name = "debugger-abcde"
			}
			if diff := cmp.Diff(want, ec.EphemeralContainerCommon, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tt.c.SharePID != (ec.TargetContainerName == "app") {
				t.Errorf("TargetContainerName = %q with SharePID %v", ec.TargetContainerName, tt.c.SharePID)
			}
		})
	}
	if _, err := b.newCall().ephemeralContainer(testPod("web"), spec.Container{User: "nobody"}, "app"); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("--user nobody: %v, want ErrInvalidSpec", err)
	}
}

func TestUniqueName(t *testing.T) {
	n := 0
	nameSuffix = func() string { n++; return []string{"taken", "free1"}[min(n-1, 1)] }
	p := testPod("web", func(p *corev1.Pod) {
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger-taken"}}}
	})
	if got := uniqueName(p); got != "debugger-free1" {
		t.Errorf("uniqueName = %q, want debugger-free1", got)
	}
}

func TestTargetContainer(t *testing.T) {
	p := testPod("web")
	if n, _ := targetContainer(p, ""); n != "app" {
		t.Errorf("default = %q, want the first container", n)
	}
	p.Annotations = map[string]string{defaultContainerAnnotation: "sidecar"}
	if n, _ := targetContainer(p, ""); n != "sidecar" {
		t.Errorf("with the annotation = %q, want sidecar", n)
	}
	if n, _ := targetContainer(p, "app"); n != "app" {
		t.Errorf("named = %q", n)
	}
	if _, err := targetContainer(p, "db"); err == nil || !strings.Contains(err.Error(), "[app sidecar]") {
		t.Errorf("unknown container: %v", err)
	}
}

func TestCustom(t *testing.T) {
	b := NewForClient(Options{Custom: []byte("env:\n- name: X\n  value: \"y\"\nresources:\n  limits:\n    cpu: 100m\nsecurityContext:\n  runAsUser: 7\n")}, clientset{fake.NewClientset()}, nil, "shop")
	ec, err := b.newCall().ephemeralContainer(testPod("web"), applied(t, "netadmin", spec.Container{Image: "busybox"}), "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(ec.Env) != 1 || ec.Env[0].Value != "y" || ec.Resources.Limits.Cpu().String() != "100m" {
		t.Errorf("custom not applied: %+v", ec)
	}
	if sc := ec.SecurityContext; sc == nil || *sc.RunAsUser != 7 || len(sc.Capabilities.Add) != 2 {
		t.Errorf("custom security context must merge with the profile's: %+v", sc)
	}
	for _, bad := range []string{`{"image":"x"}`, `{"name":"x"}`, `{"command":["sh"]}`, `{"lifecycle":{}}`, `{"volumeDevices":[]}`, `{"bogus":1}`, `[1,2]`, "a: [b"} {
		b.opts.Custom = []byte(bad)
		if _, err := b.newCall().ephemeralContainer(testPod("web"), spec.Container{Image: "busybox"}, "app"); !errors.Is(err, runtime.ErrInvalidSpec) {
			t.Errorf("custom %s: %v, want ErrInvalidSpec", bad, err)
		}
	}
}

func TestPatch(t *testing.T) {
	p := testPod("web")
	ec := &corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger-x", Image: "busybox"}, TargetContainerName: "app"}
	patch, err := ephemeralPatch(p, ec)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(patch, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"spec": map[string]any{"ephemeralContainers": []any{map[string]any{
		"name": "debugger-x", "image": "busybox", "targetContainerName": "app", "resources": map[string]any{}}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}
}

// fakeWithPatch returns a clientset whose ephemeralcontainers patch fails
// with err on dry runs and real ones alike when err is set, recording calls.
func fakeWithPatch(err error, objs ...kruntime.Object) (*fake.Clientset, *[]string) {
	cs := fake.NewClientset(objs...)
	var calls []string
	cs.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		if pa.GetSubresource() != "ephemeralcontainers" {
			return false, nil, nil
		}
		dry := len(pa.(k8stesting.PatchActionImpl).PatchOptions.DryRun) > 0
		calls = append(calls, map[bool]string{true: "dry-run", false: "patch"}[dry])
		if err != nil {
			return true, nil, err
		}
		return false, nil, nil
	})
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	return cs, &calls
}

// TestPatchRefusals: a patch the API server refuses is reported with its
// fix and as having added nothing (the API server applies a patch whole or
// not at all), after one request: no dry run first.
func TestPatchRefusals(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		name   string
		err    error
		is     error
		saying string
	}{
		{"pod security", apierrors.NewForbidden(gr, "web", errors.New(`violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false`)),
			ErrDenied, "use --profile restricted"},
		{"rbac", apierrors.NewForbidden(gr, "web", errors.New(`User "dev" cannot patch resource "pods/ephemeralcontainers"`)),
			runtime.ErrPermission, "pods/ephemeralcontainers"},
		{"disabled", apierrors.NewNotFound(schema.GroupResource{Resource: "pods/ephemeralcontainers"}, ""), runtime.ErrUnsupported,
			"ephemeral containers are disabled on this cluster"},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", nil), runtime.ErrInvalidSpec, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, calls := fakeWithPatch(tt.err, testPod("web"))
			b := NewForClient(Options{}, clientset{cs}, nil, "shop")
			err := b.Debug(context.Background(), target.Ref{Scheme: "pod", Name: "web"},
				spec.Container{Image: "busybox", SharePID: true}, testStreams())
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.saying) || !strings.Contains(err.Error(), "nothing was added to pod web") {
				t.Fatalf("error %v, want %v saying %q and that nothing was added", err, tt.is, tt.saying)
			}
			if diff := cmp.Diff([]string{"patch"}, *calls); diff != "" {
				t.Errorf("one patch, refused whole, and nothing else (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRBACAttachRefusedBeforeAnyChange(t *testing.T) {
	cs, calls := fakeWithPatch(nil, testPod("web"))
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = r.Spec.ResourceAttributes.Subresource != "attach"
		return true, r, nil
	})
	b := NewForClient(Options{}, clientset{cs}, nil, "shop")
	err := b.Debug(context.Background(), target.Ref{Scheme: "pod", Name: "web"},
		spec.Container{Image: "busybox", Stdin: true}, testStreams())
	if !errors.Is(err, runtime.ErrPermission) || !strings.Contains(err.Error(), "pods/attach") {
		t.Fatalf("error %v, want ErrPermission naming pods/attach", err)
	}
	if len(*calls) != 0 {
		t.Errorf("patch calls %v, want none", *calls)
	}
}

func TestResolveWorkloads(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	older := testPod("web-old", func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(time.Unix(100, 0)) })
	newer := testPod("web-new", func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(time.Unix(200, 0)) })
	pending := testPod("web-pending", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending })
	other := testPod("db", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "db"} })
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: appsv1.DeploymentSpec{Selector: sel}}
	cs := fake.NewClientset(older, newer, pending, other, dep)
	b := NewForClient(Options{}, clientset{cs}, nil, "shop")
	ctx := context.Background()
	pods, err := b.newCall().resolvePods(ctx, target.Ref{Scheme: "deployment", Name: "web"})
	if err != nil || len(pods) != 1 || pods[0].Name != "web-new" {
		t.Fatalf("deploy/web = %v, %v; want the newest running pod", names(pods), err)
	}
	b.opts.AllPods = true
	pods, _ = b.newCall().resolvePods(ctx, target.Ref{Scheme: "deployment", Name: "web"})
	if diff := cmp.Diff([]string{"web-new", "web-old"}, names(pods)); diff != "" {
		t.Errorf("--all-pods (-want +got):\n%s", diff)
	}
	b.opts.AllPods, b.opts.Selector = false, "app=db"
	pods, _ = b.newCall().resolvePods(ctx, target.Ref{Scheme: "pod"})
	if diff := cmp.Diff([]string{"db"}, names(pods)); diff != "" {
		t.Errorf("-l app=db (-want +got):\n%s", diff)
	}
	if _, err := b.newCall().resolvePods(ctx, target.Ref{Scheme: "statefulset", Name: "nope"}); !errors.Is(err, target.ErrNotFound) {
		t.Errorf("missing sts: %v", err)
	}
	if _, err := b.newCall().resolvePods(ctx, target.Ref{Scheme: "pod", Name: "web-pending"}); !errors.Is(err, target.ErrNotFound) || !strings.Contains(err.Error(), "Pending") {
		t.Errorf("pending pod: %v", err)
	}
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestIsPause(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"/pause\x00": true, "/usr/bin/pause": true, "pause": true,
		"/server\x00-addr\x0080\x00": false, "sh\x00-c\x00pause": false, "": false,
	} {
		if got := isPause(cmdline); got != want {
			t.Errorf("isPause(%q) = %v, want %v", cmdline, got, want)
		}
	}
}

func TestAPIFailure(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	if err := apiFailure(refused, "watching pod %s", "web"); !errors.Is(err, target.ErrUnreachable) || !strings.Contains(err.Error(), "watching pod web") {
		t.Errorf("refused connection: %v, want ErrUnreachable", err)
	}
	if err := apiFailure(errors.New("odd"), "x"); !errors.Is(err, runtime.ErrOS) {
		t.Errorf("other failure: %v, want ErrOS", err)
	}
}

// TestStaticPodRefused: a static pod's mirror is refused before anything
// is added (the kubelet would never start the container).
func TestStaticPodRefused(t *testing.T) {
	static := testPod("etcd-node-1", func(p *corev1.Pod) {
		p.Annotations = map[string]string{"kubernetes.io/config.mirror": "abc"}
		p.Spec.NodeName = "node-1"
	})
	cs, calls := fakeWithPatch(nil, static)
	b := NewForClient(Options{}, clientset{cs}, nil, "shop")
	err := b.Debug(context.Background(), target.Ref{Scheme: target.SchemePod, Name: "etcd-node-1"}, spec.Container{Image: "busybox"}, testStreams())
	if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "static pod") || !strings.Contains(err.Error(), "--copy-to") {
		t.Fatalf("error %v, want ErrUnsupported naming the static pod and --copy-to", err)
	}
	if len(*calls) != 0 {
		t.Errorf("patch calls %v, want none", *calls)
	}
}
