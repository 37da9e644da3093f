package kube

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// appMounts are the target container's mounts in volumePod.
var appMounts = []corev1.VolumeMount{
	{Name: "config", MountPath: "/etc/app", ReadOnly: true},
	{Name: "creds", MountPath: "/var/run/creds", ReadOnly: true},
	{Name: "data", MountPath: "/data"},
}

func volumePod(mutate ...func(*corev1.Pod)) *corev1.Pod {
	return testPod("web", append([]func(*corev1.Pod){func(p *corev1.Pod) {
		p.Spec.Containers[0].VolumeMounts = append([]corev1.VolumeMount{}, appMounts...)
		p.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}
	}}, mutate...)...)
}

func TestMountTargetVolumes(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	bidi, h2c := corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer
	single := func(p *corev1.Pod) { p.Spec.Containers = p.Spec.Containers[:1] }
	annotated := func(p *corev1.Pod) { p.Annotations = map[string]string{defaultContainerAnnotation: "sidecar"} }
	tests := []struct {
		name   string
		pod    *corev1.Pod
		named  string // --target
		target string // the container it resolves to
		want   []corev1.VolumeMount
		err    error
		says   string
	}{
		{"--target app", volumePod(), "app", "app", appMounts, nil, ""},
		{"--target sidecar", volumePod(), "sidecar", "sidecar", []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}, nil, ""},
		{"the only container", volumePod(single), "", "app", appMounts, nil, ""},
		{"the default-container annotation", volumePod(annotated), "", "sidecar", []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}, nil, ""},
		{"two containers, none named", volumePod(), "", "app", nil, runtime.ErrUsage, "has 2 containers: name the one whose volumes to mount with --target"},
		{"bidirectional becomes host-to-container", volumePod(func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", MountPropagation: &bidi}}
		}), "app", "app", []corev1.VolumeMount{{Name: "data", MountPath: "/data", MountPropagation: &h2c}}, nil, ""},
		{"subPath", volumePod(func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts[0].SubPath = "app.yaml"
		}), "app", "app", nil, runtime.ErrUnsupported, `mounts volume "config" at /etc/app with subPath app.yaml, which Kubernetes forbids`},
		{"subPathExpr", volumePod(func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts[2].SubPathExpr = "$(POD_NAME)"
		}), "app", "app", nil, runtime.ErrUnsupported, `mounts volume "data" at /data with subPathExpr $(POD_NAME)`},
		{"volumeDevices", volumePod(func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeDevices = []corev1.VolumeDevice{{Name: "block", DevicePath: "/dev/xvdb"}}
		}), "app", "app", nil, runtime.ErrUnsupported, `uses volume "block" as a raw block device at /dev/xvdb`},
		{"no mounts", volumePod(func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts = nil }), "app", "app", nil, nil, ""},
	}
	b := NewForClient(Options{MountTargetVolumes: true}, clientset{fake.NewClientset()}, nil, "shop")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.pod.DeepCopy()
			ec, err := b.newCall().ephemeralContainer(tt.pod, spec.Container{Image: "busybox", TargetContainer: tt.named}, tt.target)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.says) {
					t.Fatalf("error %v, want %v saying %q", err, tt.err, tt.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ec.VolumeMounts); diff != "" {
				t.Errorf("volumeMounts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.pod); diff != "" {
				t.Errorf("the pod was changed (-want +got):\n%s", diff)
			}
		})
	}

	// Without the flag, no mounts.
	b = NewForClient(Options{}, clientset{fake.NewClientset()}, nil, "shop")
	ec, err := b.newCall().ephemeralContainer(volumePod(), spec.Container{Image: "busybox", TargetContainer: "app"}, "app")
	if err != nil || ec.VolumeMounts != nil {
		t.Errorf("without --mount-target-volumes: mounts %v, error %v", ec.VolumeMounts, err)
	}
}

// TestDebugMountTargetVolumes runs Debug against the fake API server:
// --dry-run prints the mounts, pod/NAME/CONTAINER names the target as
// --target does, and a refused mount leaves the pod untouched.
func TestDebugMountTargetVolumes(t *testing.T) {
	nameSuffix = func() string { return "abcde" }
	c := spec.Container{Image: "busybox", SharePID: true}
	for _, ref := range []target.Ref{{Scheme: "pod", Name: "web", Container: "app"}, {Scheme: "pod", Name: "web"}} {
		cc := c
		if ref.Container == "" {
			cc.TargetContainer = "app"
		}
		b := NewForClient(Options{DryRun: true, MountTargetVolumes: true}, clientset{fake.NewClientset(volumePod())}, nil, "shop")
		streams := testStreams()
		if err := b.Debug(context.Background(), ref, cc, streams); err != nil {
			t.Fatalf("%+v: %v", ref, err)
		}
		var printed corev1.EphemeralContainer
		if err := yaml.Unmarshal(streams.Out.(*bytes.Buffer).Bytes(), &printed); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(appMounts, printed.VolumeMounts); diff != "" {
			t.Errorf("%+v: --dry-run volumeMounts (-want +got):\n%s", ref, diff)
		}
	}

	cs, _ := fakeWithPatch(nil, volumePod(func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPathExpr = "$(X)" }))
	b := NewForClient(Options{MountTargetVolumes: true}, clientset{cs}, nil, "shop")
	err := b.Debug(context.Background(), target.Ref{Scheme: "pod", Name: "web", Container: "app"}, c, testStreams())
	if !errors.Is(err, runtime.ErrUnsupported) {
		t.Fatalf("subPathExpr: error %v, want ErrUnsupported", err)
	}
	p, _ := cs.CoreV1().Pods("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if len(p.Spec.EphemeralContainers) != 0 {
		t.Errorf("a refused mount added %d containers", len(p.Spec.EphemeralContainers))
	}
}

func TestPrepareDebugMountTargetVolumes(t *testing.T) {
	for _, tt := range []struct {
		ref  target.Ref
		args []string
		bad  string
	}{
		{target.Ref{Scheme: target.SchemePod, Name: "web"}, []string{"--mount-target-volumes", "--target", "app"}, ""},
		{target.Ref{Scheme: target.SchemeNode, Name: "worker-1"}, []string{"--mount-target-volumes"}, "not with node targets"},
		{target.Ref{Scheme: target.SchemePod, Name: "web"}, []string{"--mount-target-volumes", "--copy-to", "x"}, "or --copy-to"},
	} {
		k := &config{}
		fs := pflag.NewFlagSet("debug", pflag.ContinueOnError)
		k.AddFlags(runtime.VerbDebug, fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		c := spec.Container{Image: "busybox"}
		_, err := k.PrepareDebug(tt.ref, &c, true)
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("%s %v: %v", tt.ref, tt.args, err)
		case tt.bad != "" && (!errors.Is(err, runtime.ErrUsage) || !strings.Contains(err.Error(), tt.bad)):
			t.Errorf("%s %v: error %v, want ErrUsage saying %q", tt.ref, tt.args, err, tt.bad)
		}
	}
}

// TestReuseMatchesMounts: --reuse attaches only to a debugger with the
// same volume mounts.
func TestReuseMatchesMounts(t *testing.T) {
	running := corev1.ContainerStatus{Name: "debugger-a", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	bare := corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger-a", Image: "busybox", Stdin: true}}
	p := testPod("web", func(p *corev1.Pod) {
		p.Spec.EphemeralContainers = []corev1.EphemeralContainer{bare}
		p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{running}
	})
	withMounts := bare
	withMounts.VolumeMounts = appMounts
	if name, ok := reusable(p, &withMounts); ok {
		t.Errorf("a debugger without the target's mounts stood in for one with them: %q", name)
	}
	if name, ok := reusable(p, &bare); !ok || name != "debugger-a" {
		t.Errorf("the same container is not reused: %q %v", name, ok)
	}
}
