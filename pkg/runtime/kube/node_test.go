package kube

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
)

func testNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
}

var nodeRef = target.Ref{Scheme: "node", Name: "node-1"}

func TestNodePod(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	b := NewForClient(Options{}, clientset{fake.NewClientset()}, nil, "ops")
	c := appliedAs(t, "general", profile.Node, spec.Container{Image: "busybox", Command: []string{"sh"}, Stdin: true, TTY: true,
		Env: []spec.EnvVar{{Name: "A", Value: "b"}}})
	p, err := b.newCall().nodePod("node-1", c)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "node-debugger-node-1-abcde", Namespace: "ops", Labels: map[string]string{managedByLabel: "ephem"}},
		Spec: corev1.PodSpec{
			NodeName: "node-1", RestartPolicy: corev1.RestartPolicyNever, HostPID: true, HostNetwork: true, HostIPC: true,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Volumes:     []corev1.Volume{{Name: "host-root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}},
			Containers: []corev1.Container{{Name: "debugger", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh"},
				Env: []corev1.EnvVar{{Name: "A", Value: "b"}}, Stdin: true, TTY: true, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				VolumeMounts: []corev1.VolumeMount{{Name: "host-root", MountPath: "/host"}}}},
		},
	}
	if diff := cmp.Diff(want, p, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("general (-want +got):\n%s", diff)
	}

	p, err = b.newCall().nodePod("node-1", appliedAs(t, "sysadmin", profile.Node, spec.Container{Image: "busybox"}))
	if err != nil {
		t.Fatal(err)
	}
	if sc := p.Spec.Containers[0].SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
		t.Errorf("sysadmin: security context %+v, want privileged", sc)
	}

	// --custom comes last and merges with the /host mount.
	b.opts.Custom = []byte(`{"volumeMounts":[{"name":"host-root","mountPath":"/host","readOnly":true}]}`)
	p, err = b.newCall().nodePod("node-1", c)
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Spec.Containers[0].VolumeMounts; len(m) != 1 || !m[0].ReadOnly {
		t.Errorf("custom mounts: %+v, want the /host mount made read-only", m)
	}
}

func TestDebugNodeMissing(t *testing.T) {
	cs := fakeCluster(nil)
	b := NewForClient(Options{RemoveNodePod: true}, clientset{cs}, nil, "ops")
	err := b.Debug(context.Background(), nodeRef, spec.Container{Image: "busybox"}, testStreams())
	if !errors.Is(err, target.ErrNotFound) || !strings.Contains(err.Error(), `no node "node-1"`) {
		t.Fatalf("error %v, want ErrNotFound naming the node", err)
	}
	if pods, _ := cs.CoreV1().Pods("ops").List(context.Background(), metav1.ListOptions{}); len(pods.Items) != 0 {
		t.Errorf("%d pods created for a missing node", len(pods.Items))
	}
}

// nodePods lists the pods left in namespace ops.
func nodePods(t *testing.T, cs *fake.Clientset) []string {
	t.Helper()
	pods, err := cs.CoreV1().Pods("ops").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods.Items {
		out = append(out, p.Name)
	}
	return out
}

func TestDebugNodeRemovesPod(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	tests := []struct {
		name   string
		rm     bool
		states []corev1.PodStatus
		check  func(error) bool
		kept   bool
	}{
		{"exit code", true, []corev1.PodStatus{statusOf("debugger", runningState), statusOf("debugger", exited3)},
			func(err error) bool { var e *runtime.ExitError; return errors.As(err, &e) && e.Code == 3 }, false},
		{"wait fails", true, []corev1.PodStatus{statusOf("debugger", corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}})},
			func(err error) bool { return errors.Is(err, ErrImagePull) }, false},
		{"--rm=false keeps it", false, []corev1.PodStatus{statusOf("debugger", exited3)},
			func(err error) bool { var e *runtime.ExitError; return errors.As(err, &e) && e.Code == 3 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fakeCluster([]kruntime.Object{testNode()}, tt.states...)
			var log bytes.Buffer
			b := NewForClient(Options{Log: &log, Timeout: 5 * time.Second, RemoveNodePod: tt.rm}, clientset{cs}, nil, "ops")
			err := b.Debug(context.Background(), nodeRef, appliedAs(t, "general", profile.Node, spec.Container{Image: "busybox"}), testStreams())
			if !tt.check(err) {
				t.Fatalf("unexpected error %v", err)
			}
			left := nodePods(t, cs)
			if kept := len(left) == 1; kept != tt.kept {
				t.Errorf("pods left %v, want the node pod kept: %v", left, tt.kept)
			}
			if says := strings.Contains(log.String(), "kubectl delete pod node-debugger-node-1-abcde -n ops"); says != tt.kept {
				t.Errorf("log %q: says how to delete the pod: %v, want %v", log.String(), says, tt.kept)
			}
		})
	}
}

func TestDebugNodeRemovesPodOnCancel(t *testing.T) {
	// No state ever arrives: the wait lasts until ctx is cancelled.
	cs := fakeCluster([]kruntime.Object{testNode()})
	b := NewForClient(Options{Timeout: time.Minute, RemoveNodePod: true}, clientset{cs}, nil, "ops")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Debug(ctx, nodeRef, spec.Container{Image: "busybox"}, testStreams())
	if exit := (*runtime.ExitError)(nil); !errors.As(err, &exit) || exit.Code != 130 || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("error %v, want exit code 130 saying the session was interrupted", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
	if left := nodePods(t, cs); len(left) != 0 {
		t.Errorf("pods left after cancel: %v", left)
	}
}

func TestCreateError(t *testing.T) {
	b := NewForClient(Options{}, clientset{fake.NewClientset()}, nil, "ops")
	p := testPod("web")
	gr := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		err    error
		is     error
		saying string
	}{
		{apierrors.NewAlreadyExists(gr, "web"), runtime.ErrInvalidSpec, "kubectl delete pod web -n shop"},
		{apierrors.NewForbidden(gr, "web", errors.New(`User "dev" cannot create resource "pods" in API group ""`)), runtime.ErrPermission, "RBAC"},
		{apierrors.NewForbidden(gr, "web", errors.New(`error looking up service account shop/default`)), ErrDenied, "service account"},
		{apierrors.NewForbidden(gr, "web", errors.New(`violates PodSecurity "baseline:latest": host namespaces`)), ErrDenied, "use a profile"},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", nil), runtime.ErrInvalidSpec, "rejected"},
	}
	for _, tt := range tests {
		if err := b.newCall().createError(tt.err, p); !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.saying) {
			t.Errorf("createError(%v) = %v, want %v saying %q", tt.err, err, tt.is, tt.saying)
		}
	}
}

// TestNodePodPerProfile: what of the host the node pod shares follows the
// profile, as kubectl's node debugging does.
func TestNodePodPerProfile(t *testing.T) {
	b := NewForClient(Options{}, clientset{fake.NewClientset()}, nil, "default")
	for _, tt := range []struct {
		profile    string
		namespaces bool
		root       bool
	}{
		{"general", true, true}, {"sysadmin", true, true}, {"legacy", true, true},
		{"netadmin", true, false}, {"baseline", false, false}, {"restricted", false, false},
	} {
		p, err := b.newCall().nodePod("node-1", appliedAs(t, tt.profile, profile.Node, spec.Container{Image: "busybox"}))
		if err != nil {
			t.Fatal(err)
		}
		s := p.Spec
		if s.HostPID != tt.namespaces || s.HostNetwork != tt.namespaces || s.HostIPC != tt.namespaces {
			t.Errorf("%s: host namespaces pid/net/ipc %v/%v/%v, want %v", tt.profile, s.HostPID, s.HostNetwork, s.HostIPC, tt.namespaces)
		}
		if hasRoot := len(s.Volumes) == 1 && len(s.Containers[0].VolumeMounts) == 1 && s.Containers[0].VolumeMounts[0].MountPath == "/host"; hasRoot != tt.root {
			t.Errorf("%s: /host mounted %v, want %v", tt.profile, hasRoot, tt.root)
		}
		if s.NodeName != "node-1" || len(s.Tolerations) != 1 {
			t.Errorf("%s: nodeName %q tolerations %v", tt.profile, s.NodeName, s.Tolerations)
		}
	}
}
