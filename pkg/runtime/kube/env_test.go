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
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// appEnv and appEnvFrom are the target container's environment in envPod.
var (
	appEnv = []corev1.EnvVar{
		{Name: "MODE", Value: "prod"},
		{Name: "PATH", Value: "/app/bin"},
		{Name: "DB_HOST", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "db"}}},
		{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
		{Name: "URL", Value: "http://$(DB_HOST)/"},
	}
	appEnvFrom = []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
		{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "more"}}},
	}
)

// wantEnv is what a debug container of "app" gets with --env-from-target
// and -e EXTRA=1: the target's env without PATH, the resource reference
// pinned to the target, then -e.
func wantEnv() []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, e := range appEnv {
		if e.Name == "PATH" {
			continue
		}
		e = *e.DeepCopy()
		if e.Name == "MEM" {
			e.ValueFrom.ResourceFieldRef.ContainerName = "app"
		}
		env = append(env, e)
	}
	return append(env, corev1.EnvVar{Name: "EXTRA", Value: "1"})
}

func envPod() *corev1.Pod {
	return testPod("web", func(p *corev1.Pod) {
		p.Spec.Containers[0].Env, p.Spec.Containers[0].EnvFrom = appEnv, appEnvFrom
		p.Spec.Containers[1].Env = []corev1.EnvVar{{Name: "SIDECAR", Value: "yes"}}
	})
}

var extra = []spec.EnvVar{{Name: "EXTRA", Value: "1"}}

func TestEphemeralContainerEnvFromTarget(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	b := NewForClient(Options{}, clientset{fake.NewClientset()}, nil, "shop")
	tests := []struct {
		name     string
		c        spec.Container
		target   string
		wantEnv  []corev1.EnvVar
		wantFrom []corev1.EnvFromSource
	}{
		{"the target's env, envFrom, then -e", spec.Container{Image: "busybox", EnvFromTarget: true, SharePID: true, Env: extra}, "app",
			wantEnv(), appEnvFrom},
		{"without --share-pid too", spec.Container{Image: "busybox", EnvFromTarget: true, Env: extra}, "app", wantEnv(), appEnvFrom},
		{"another target", spec.Container{Image: "busybox", EnvFromTarget: true}, "sidecar",
			[]corev1.EnvVar{{Name: "SIDECAR", Value: "yes"}}, nil},
		{"without the flag, -e only", spec.Container{Image: "busybox", Env: extra}, "app", []corev1.EnvVar{{Name: "EXTRA", Value: "1"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := envPod()
			ec, err := b.newCall().ephemeralContainer(p, tt.c, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantEnv, ec.Env, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFrom, ec.EnvFrom, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("envFrom (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(envPod(), p); diff != "" {
				t.Errorf("the pod was changed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnvFromMissingTarget(t *testing.T) {
	b := NewForClient(Options{}, clientset{fake.NewClientset()}, nil, "shop")
	_, err := b.newCall().ephemeralContainer(envPod(), spec.Container{Image: "busybox", EnvFromTarget: true}, "gone")
	if !errors.Is(err, runtime.ErrUsage) {
		t.Fatalf("error %v, want ErrUsage", err)
	}
}

// TestDebugEnvFromTarget runs Debug against the fake API server: the dry
// run prints, and the patch adds, the target's environment.
func TestDebugEnvFromTarget(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	ref := target.Ref{Scheme: "pod", Name: "web"}
	c := spec.Container{Image: "busybox", EnvFromTarget: true, SharePID: true, Env: extra}

	b := NewForClient(Options{DryRun: true}, clientset{fake.NewClientset(envPod())}, nil, "shop")
	streams := testStreams()
	if err := b.Debug(context.Background(), ref, c, streams); err != nil {
		t.Fatal(err)
	}
	var printed corev1.EphemeralContainer
	if err := yaml.Unmarshal(streams.Out.(*bytes.Buffer).Bytes(), &printed); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantEnv(), printed.Env); diff != "" {
		t.Errorf("--dry-run env (-want +got):\n%s", diff)
	}

	cs, _ := fakeWithPatch(nil, envPod())
	b = NewForClient(Options{Timeout: 50 * time.Millisecond}, clientset{cs}, nil, "shop")
	_ = b.Debug(context.Background(), ref, c, testStreams()) // the fake container never runs
	p, err := cs.CoreV1().Pods("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || len(p.Spec.EphemeralContainers) != 1 {
		t.Fatalf("the pod after the patch: %v, %v", p, err)
	}
	ec := p.Spec.EphemeralContainers[0]
	if diff := cmp.Diff(wantEnv(), ec.Env); diff != "" {
		t.Errorf("patched env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(appEnvFrom, ec.EnvFrom); diff != "" {
		t.Errorf("patched envFrom (-want +got):\n%s", diff)
	}
}

func TestPodCopyEnvFromTarget(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	c := appliedAs(t, "general", profile.PodCopy, spec.Container{Image: "busybox", EnvFromTarget: true, Env: extra})
	b := NewForClient(Options{Copy: &CopyOptions{Name: "web-copy", ShareProcesses: true}}, clientset{fake.NewClientset()}, nil, "shop")
	cp, name, err := b.newCall().podCopy(envPod(), "app", c)
	if err != nil {
		t.Fatal(err)
	}
	dc, ok := containerNamed(cp, name)
	if !ok {
		t.Fatalf("no debug container %q in the copy", name)
	}
	if diff := cmp.Diff(wantEnv(), dc.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(appEnvFrom, dc.EnvFrom); diff != "" {
		t.Errorf("envFrom (-want +got):\n%s", diff)
	}

	// --set-image without --image follows the target itself: its own
	// environment stays whole, -e after it.
	c = appliedAs(t, "general", profile.PodCopy, spec.Container{EnvFromTarget: true, Env: extra})
	b = NewForClient(Options{Copy: &CopyOptions{Name: "web-copy", SetImages: map[string]string{"app": "busybox"}}},
		clientset{fake.NewClientset()}, nil, "shop")
	if cp, name, err = b.newCall().podCopy(envPod(), "app", c); err != nil {
		t.Fatal(err)
	}
	dc, _ = containerNamed(cp, name)
	want := append(append([]corev1.EnvVar{}, appEnv...), corev1.EnvVar{Name: "EXTRA", Value: "1"})
	if name != "app" || !cmp.Equal(want, dc.Env) || !cmp.Equal(appEnvFrom, dc.EnvFrom) {
		t.Errorf("following the target %q: env %v envFrom %v, want its own plus EXTRA", name, dc.Env, dc.EnvFrom)
	}
}

func TestPrepareDebugEnvFromTarget(t *testing.T) {
	for _, tt := range []struct {
		ref  target.Ref
		args []string
		bad  string
	}{
		{target.Ref{Scheme: target.SchemeNode, Name: "worker-1"}, nil, "node targets have no target container"},
		{target.Ref{Scheme: target.SchemePod, Name: "web"}, nil, ""},
		{target.Ref{Scheme: target.SchemePod, Name: "web"}, []string{"--copy-to", "web-copy"}, ""},
	} {
		k := &config{}
		fs := pflag.NewFlagSet("debug", pflag.ContinueOnError)
		k.AddFlags(runtime.VerbDebug, fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		c := spec.Container{Image: "busybox", EnvFromTarget: true}
		_, err := k.PrepareDebug(tt.ref, &c, true)
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("%s %v: %v", tt.ref, tt.args, err)
		case tt.bad != "" && (!errors.Is(err, runtime.ErrUsage) || !strings.Contains(err.Error(), tt.bad)):
			t.Errorf("%s: error %v, want ErrUsage saying %q", tt.ref, err, tt.bad)
		}
	}
}

// TestReuseMatchesEnvironment: --reuse attaches only to a debugger whose
// environment is the one asked for.
func TestReuseMatchesEnvironment(t *testing.T) {
	running := corev1.ContainerStatus{Name: "debugger-a", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	withEnv := corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger-a", Image: "busybox", Stdin: true,
		Env: []corev1.EnvVar{{Name: "APP", Value: "1"}}}}
	p := testPod("web", func(p *corev1.Pod) {
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{withEnv}
		p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{running}
	})
	same := withEnv
	if name, ok := reusable(p, &same); !ok || name != "debugger-a" {
		t.Errorf("the same container is not reused: %q %v", name, ok)
	}
	bare := withEnv
	bare.Env = nil
	if name, ok := reusable(p, &bare); ok {
		t.Errorf("a debugger with the target's environment stood in for one without: %q", name)
	}
}
