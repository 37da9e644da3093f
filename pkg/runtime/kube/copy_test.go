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
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// appliedAs applies profile name to c in the given style, as the CLI does.
func appliedAs(t *testing.T, name string, style profile.Style, c spec.Container) spec.Container {
	t.Helper()
	p, err := profile.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(&c, style); err != nil {
		t.Fatal(err)
	}
	return c
}

// richPod is a running pod with everything a copy drops by default.
func richPod() *corev1.Pod {
	return testPod("web", func(p *corev1.Pod) {
		p.Annotations = map[string]string{"team": "shop"}
		p.Spec.NodeName = "node-1"
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "init:1"}}
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger-old", Image: "busybox"}}}
		probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		for i := range p.Spec.Containers {
			p.Spec.Containers[i].LivenessProbe, p.Spec.Containers[i].ReadinessProbe, p.Spec.Containers[i].StartupProbe = probe, probe, probe
		}
	})
}

func TestPodCopy(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	general := appliedAs(t, "general", profile.PodCopy, spec.Container{Image: "busybox", Command: []string{"sh"}, Stdin: true, TTY: true})
	ptrace := &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}
	debugger := corev1.Container{Name: "debugger-abcde", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh"},
		Stdin: true, TTY: true, TerminationMessagePolicy: corev1.TerminationMessageReadFile, SecurityContext: ptrace}

	t.Run("defaults drop labels, annotations, probes, init containers and the node", func(t *testing.T) {
		orig := richPod()
		b := NewForClient(Options{Copy: &CopyOptions{Name: "web-copy", ShareProcesses: true}}, clientset{fake.NewClientset()}, nil, "shop")
		cp, name, err := b.newCall().podCopy(orig, "app", general)
		if err != nil {
			t.Fatal(err)
		}
		want := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-copy", Namespace: "shop"},
			Spec: corev1.PodSpec{ShareProcessNamespace: ptr(true), Containers: []corev1.Container{
				{Name: "app", Image: "web:1"}, {Name: "sidecar", Image: "proxy:1"}, debugger}},
		}
		if diff := cmp.Diff(want, cp, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("copy (-want +got):\n%s", diff)
		}
		if name != "debugger-abcde" {
			t.Errorf("debug container = %q", name)
		}
		if diff := cmp.Diff(richPod(), orig); diff != "" {
			t.Errorf("the original pod was changed (-want +got):\n%s", diff)
		}
	})

	t.Run("--keep-*, --same-node, --share-processes=false", func(t *testing.T) {
		orig := richPod()
		b := NewForClient(Options{Copy: &CopyOptions{Name: "web-copy", SameNode: true, KeepLabels: true, KeepAnnotations: true,
			KeepLiveness: true, KeepReadiness: true, KeepStartup: true, KeepInitContainers: true}}, clientset{fake.NewClientset()}, nil, "shop")
		cp, _, err := b.newCall().podCopy(orig, "app", general)
		if err != nil {
			t.Fatal(err)
		}
		want := orig.Spec.DeepCopy()
		want.EphemeralContainers = nil
		want.ShareProcessNamespace = ptr(false)
		want.Containers = append(want.Containers, debugger)
		if diff := cmp.Diff(*want, cp.Spec, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("spec (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(orig.Labels, cp.Labels); diff != "" || cp.Annotations["team"] != "shop" {
			t.Errorf("labels %v, annotations %v: want the original's", cp.Labels, cp.Annotations)
		}
	})

	t.Run("--set-image, named and *", func(t *testing.T) {
		b := NewForClient(Options{Copy: &CopyOptions{Name: "web-copy", SetImages: map[string]string{"*": "all:2", "sidecar": "proxy:2"}}},
			clientset{fake.NewClientset()}, nil, "shop")
		cp, name, err := b.newCall().podCopy(testPod("web"), "app", general)
		if err != nil {
			t.Fatal(err)
		}
		var images []string
		for _, c := range cp.Spec.Containers {
			images = append(images, c.Name+"="+c.Image)
		}
		if diff := cmp.Diff([]string{"app=all:2", "sidecar=proxy:2", "debugger-abcde=busybox"}, images); diff != "" || name != "debugger-abcde" {
			t.Errorf("images (-want +got):\n%s; debug container %q", diff, name)
		}
	})

	t.Run("--set-image without --image follows the target container", func(t *testing.T) {
		b := NewForClient(Options{Copy: &CopyOptions{Name: "web-copy", SetImages: map[string]string{"app": "web:debug"}}},
			clientset{fake.NewClientset()}, nil, "shop")
		c := general
		c.Image, c.Command = "", nil
		cp, name, err := b.newCall().podCopy(testPod("web"), "app", c)
		if err != nil {
			t.Fatal(err)
		}
		want := []corev1.Container{{Name: "app", Image: "web:debug", Stdin: true, TTY: true, SecurityContext: ptrace}, {Name: "sidecar", Image: "proxy:1"}}
		if diff := cmp.Diff(want, cp.Spec.Containers, cmpopts.EquateEmpty()); diff != "" || name != "app" {
			t.Errorf("containers (-want +got):\n%s; debug container %q, want app", diff, name)
		}
		b.opts.Copy.SetImages = nil
		if _, _, err := b.newCall().podCopy(testPod("web"), "app", c); !errors.Is(err, runtime.ErrInvalidSpec) {
			t.Errorf("no --image, no --set-image: %v, want ErrInvalidSpec", err)
		}
	})

	t.Run("a name of an existing container changes it", func(t *testing.T) {
		b := NewForClient(Options{Copy: &CopyOptions{Name: "web-copy"}, Custom: []byte(`{"env":[{"name":"X","value":"1"}]}`)},
			clientset{fake.NewClientset()}, nil, "shop")
		orig := testPod("web", func(p *corev1.Pod) {
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(7)), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
		})
		c := appliedAs(t, "general", profile.PodCopy, spec.Container{Name: "sidecar", Image: "busybox", Command: []string{"sh"}})
		cp, name, err := b.newCall().podCopy(orig, "app", c)
		if err != nil {
			t.Fatal(err)
		}
		want := corev1.Container{Name: "sidecar", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh"},
			Env:             []corev1.EnvVar{{Name: "X", Value: "1"}},
			SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(7)), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "SYS_PTRACE"}}}}
		if diff := cmp.Diff(want, cp.Spec.Containers[1], cmpopts.EquateEmpty()); diff != "" || name != "sidecar" || len(cp.Spec.Containers) != 2 {
			t.Errorf("sidecar (-want +got):\n%s; debug container %q; %d containers", diff, name, len(cp.Spec.Containers))
		}
	})
}

func TestMergeSecurity(t *testing.T) {
	own := &corev1.SecurityContext{RunAsUser: ptr(int64(1000)), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}
	if got := mergeSecurity(own, nil); got != own {
		t.Errorf("nothing to add must keep the container's own: %+v", got)
	}
	add := &corev1.SecurityContext{Privileged: ptr(true), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE", "NET_RAW"}, Drop: []corev1.Capability{"ALL"}}}
	want := &corev1.SecurityContext{RunAsUser: ptr(int64(1000)), Privileged: ptr(true),
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE", "NET_RAW"}, Drop: []corev1.Capability{"ALL"}}}
	if diff := cmp.Diff(want, mergeSecurity(own, add)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(own.Capabilities.Add) != 1 || own.Privileged != nil {
		t.Errorf("the container's own context was changed: %+v", own)
	}
}

// fakeCluster is a clientset holding objs that allows every access review
// and serves each pod watch the given states of the pod under watch, in
// order, each as its own copy with the watched name.
func fakeCluster(objs []kruntime.Object, states ...corev1.PodStatus) *fake.Clientset {
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = true
		return true, r, nil
	})
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		name := ""
		if r := a.(k8stesting.WatchAction).GetWatchRestrictions(); r.Fields != nil {
			name, _ = r.Fields.RequiresExactMatch("metadata.name")
		}
		w := watch.NewFakeWithChanSize(len(states), false)
		for _, s := range states {
			p, err := cs.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), a.GetNamespace(), name)
			if err != nil {
				break
			}
			p = p.DeepCopyObject()
			p.(*corev1.Pod).Status = s
			w.Modify(p)
		}
		return true, w, nil
	})
	return cs
}

// statusOf is a pod status with one regular container in state s.
func statusOf(name string, s corev1.ContainerState) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: name, State: s}}}
}

var (
	runningState = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	exited3      = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}
)

func TestDebugCopy(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	ref := target.Ref{Scheme: "pod", Name: "web"}
	c := appliedAs(t, "general", profile.PodCopy, spec.Container{Image: "busybox", Command: []string{"sh", "-c", "exit 3"}})
	for _, replace := range []bool{false, true} {
		cs := fakeCluster([]kruntime.Object{richPod()}, statusOf("debugger-abcde", runningState), statusOf("debugger-abcde", exited3))
		var log bytes.Buffer
		b := NewForClient(Options{Log: &log, Timeout: 5 * time.Second, Copy: &CopyOptions{Name: "web-copy", Replace: replace, ShareProcesses: true}},
			clientset{cs}, nil, "shop")
		streams := testStreams()
		err := b.Debug(context.Background(), ref, c, streams)
		var exit *runtime.ExitError
		if !errors.As(err, &exit) || exit.Code != 3 {
			t.Fatalf("replace %v: error %v, want exit code 3", replace, err)
		}
		if out := streams.Out.(*bytes.Buffer).String(); out != "fake logs" {
			t.Errorf("output %q, want the container's logs", out)
		}
		cp, err := cs.CoreV1().Pods("shop").Get(context.Background(), "web-copy", metav1.GetOptions{})
		if err != nil || cp.Spec.Containers[2].Name != "debugger-abcde" || cp.Labels != nil {
			t.Fatalf("the copy: %v, %v", cp, err)
		}
		_, err = cs.CoreV1().Pods("shop").Get(context.Background(), "web", metav1.GetOptions{})
		if gone := apierrors.IsNotFound(err); gone != replace {
			t.Errorf("with --replace=%v the original is gone: %v (%v)", replace, gone, err)
		}
		if !strings.Contains(log.String(), "kubectl delete pod web-copy -n shop") {
			t.Errorf("log %q does not say how to delete the copy", log.String())
		}
		if replace && !strings.Contains(log.String(), "deleted the original pod web") {
			t.Errorf("log %q does not report the deletion", log.String())
		}
	}
}

func TestDebugCopyNameTaken(t *testing.T) {
	taken := testPod("web-copy")
	cs := fakeCluster([]kruntime.Object{testPod("web"), taken})
	b := NewForClient(Options{Copy: &CopyOptions{Name: "web-copy", Replace: true}}, clientset{cs}, nil, "shop")
	err := b.Debug(context.Background(), target.Ref{Scheme: "pod", Name: "web"}, spec.Container{Image: "busybox"}, testStreams())
	if !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "kubectl delete pod web-copy") {
		t.Fatalf("error %v, want ErrInvalidSpec saying the name is taken and how to free it", err)
	}
	if _, err := cs.CoreV1().Pods("shop").Get(context.Background(), "web", metav1.GetOptions{}); err != nil {
		t.Errorf("--replace deleted the original although no copy was made: %v", err)
	}
}

func TestDebugCopyDryRun(t *testing.T) {
	cs := fakeCluster([]kruntime.Object{testPod("web")})
	b := NewForClient(Options{DryRun: true, Copy: &CopyOptions{Name: "web-copy", Replace: true}}, clientset{cs}, nil, "shop")
	streams := testStreams()
	if err := b.Debug(context.Background(), target.Ref{Scheme: "pod", Name: "web"}, spec.Container{Image: "busybox"}, streams); err != nil {
		t.Fatal(err)
	}
	if out := streams.Out.(*bytes.Buffer).String(); !strings.Contains(out, "name: web-copy") || !strings.Contains(out, "image: busybox") {
		t.Errorf("dry run printed %q, want the copy", out)
	}
	if pods, _ := cs.CoreV1().Pods("shop").List(context.Background(), metav1.ListOptions{}); len(pods.Items) != 1 {
		t.Errorf("a dry run changed the pods: %d", len(pods.Items))
	}
}

func TestAsEphemeral(t *testing.T) {
	p := testPod("web")
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", RestartCount: 1, State: runningState,
		LastTerminationState: exited3}}
	if s, _ := containerStatus(asEphemeral(p), "app"); s.State.Terminated == nil || s.State.Terminated.ExitCode != 3 {
		t.Errorf("a restarted container must show its first run's end: %+v", s.State)
	}
	if len(p.Status.EphemeralContainerStatuses) != 0 || p.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("asEphemeral changed its argument: %+v", p.Status)
	}
	p = testPod("web", func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
			Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available"}}}
	})
	if s, _ := containerStatus(asEphemeral(p), "sidecar"); s.State.Waiting == nil || s.State.Waiting.Reason != "Unschedulable" {
		t.Errorf("an unscheduled pod's containers must wait with its reason: %+v", s.State)
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: "OutOfcpu", Message: "Node didn't have enough resource"}
	b := NewForClient(Options{Timeout: time.Second}, clientset{fake.NewClientset()}, nil, "shop")
	b.client = statusView{b.client}
	if _, err := b.newCall().waitFor(context.Background(), asEphemeral(p), "app", "running", running); !errors.Is(err, ErrCreate) || !strings.Contains(err.Error(), "OutOfcpu") {
		t.Errorf("a pod the kubelet rejected: %v, want ErrCreate naming the reason", err)
	}
}

func TestDebugCopyRestartedContainer(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	// The copy restarts always: the debugger is seen running again after
	// its first run ended with 3.
	restarted := corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "debugger-abcde",
		RestartCount: 1, State: runningState, LastTerminationState: exited3}}}
	cs := fakeCluster([]kruntime.Object{testPod("web")}, restarted)
	b := NewForClient(Options{Timeout: 5 * time.Second, Copy: &CopyOptions{Name: "web-copy"}}, clientset{cs}, nil, "shop")
	err := b.Debug(context.Background(), target.Ref{Scheme: "pod", Name: "web"},
		spec.Container{Image: "busybox", Command: []string{"sh", "-c", "exit 3"}}, testStreams())
	var exit *runtime.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Fatalf("error %v, want the first run's exit code 3", err)
	}
	var previous []bool
	for _, a := range cs.Actions() {
		if a.GetSubresource() == "log" {
			previous = append(previous, a.(k8stesting.GenericActionImpl).Value.(*corev1.PodLogOptions).Previous)
		}
	}
	if diff := cmp.Diff([]bool{true}, previous); diff != "" {
		t.Errorf("log reads' Previous (-want +got):\n%s", diff)
	}
}

// TestCopyOfFailedPod: a pod that is not running can still be copied, as
// kubectl does; debugging it in place cannot.
func TestCopyOfFailedPod(t *testing.T) {
	failed := testPod("job-x", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })
	cs := fakeCluster([]kruntime.Object{failed})
	ref := target.Ref{Scheme: "pod", Name: "job-x"}
	b := NewForClient(Options{DryRun: true, Copy: &CopyOptions{Name: "job-x-debug"}}, clientset{cs}, nil, "shop")
	streams := testStreams()
	if err := b.Debug(context.Background(), ref, spec.Container{Image: "busybox"}, streams); err != nil {
		t.Fatalf("copying a failed pod: %v", err)
	}
	if out := streams.Out.(*bytes.Buffer).String(); !strings.Contains(out, "name: job-x-debug") {
		t.Errorf("dry run printed %q, want the copy", out)
	}
	b = NewForClient(Options{}, clientset{cs}, nil, "shop")
	if err := b.Debug(context.Background(), ref, spec.Container{Image: "busybox"}, testStreams()); !errors.Is(err, target.ErrNotFound) {
		t.Errorf("debugging a failed pod in place: %v, want ErrNotFound (not running)", err)
	}
}
