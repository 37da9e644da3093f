package kube

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/google/go-cmp/cmp"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

func TestHelperContainer(t *testing.T) {
	t.Setenv("EPHEM_IMAGE", "")
	uid := int64(1000)
	tests := []struct {
		name    string
		pod     *corev1.Pod
		profile string
		check   func(*corev1.EphemeralContainer) string
	}{
		{"root target: general", testPod("web"), "", func(ec *corev1.EphemeralContainer) string {
			if sc := ec.SecurityContext; sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Add) != 1 || sc.Capabilities.Add[0] != "SYS_PTRACE" || sc.RunAsUser != nil {
				return "want SYS_PTRACE added, the image's user"
			}
			return ""
		}},
		{"non-root target: restricted as its user", testPod("web", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid}
		}), "", func(ec *corev1.EphemeralContainer) string {
			if sc := ec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1000 || sc.SeccompProfile == nil {
				return "want the restricted profile as uid 1000"
			}
			return ""
		}},
		{"runAsNonRoot, the user the kubelet reports", testPod("web", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr(true)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", User: &corev1.ContainerUser{Linux: &corev1.LinuxContainerUser{UID: 65532, GID: 65532}}}}
		}), "", func(ec *corev1.EphemeralContainer) string {
			if sc := ec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || *sc.RunAsGroup != 65532 {
				return "want uid and gid 65532"
			}
			return ""
		}},
		{"capture: netadmin", testPod("web"), "netadmin", func(ec *corev1.EphemeralContainer) string {
			if sc := ec.SecurityContext; sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Add) != 2 || sc.Privileged != nil {
				return "want NET_ADMIN and NET_RAW, not privileged"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewForClient(Options{Custom: []byte(`{"tty": true}`)}, nil, nil, "shop").newCall()
			ec, err := b.helperContainer(tt.pod, "app", tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			if ec.Image != defaultToolImage || !cmp.Equal(ec.Command, helperCommand) || ec.TargetContainerName != "app" || ec.Stdin || ec.TTY {
				t.Errorf("helper %+v: want the idle command in %s beside app, without stdin or --custom", ec, defaultToolImage)
			}
			if msg := tt.check(ec); msg != "" {
				t.Errorf("security context %+v: %s", ec.SecurityContext, msg)
			}
		})
	}
}

func TestIdleHelperReuse(t *testing.T) {
	b := NewForClient(Options{}, nil, nil, "shop").newCall()
	p := testPod("web")
	want, err := b.helperContainer(p, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	runningStatus := func(name string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	}
	same := *want
	same.Name = "debugger-idle"
	shell := *want
	shell.Name, shell.Command, shell.Stdin = "debugger-shell", []string{"sh"}, true
	other := *want
	other.Name, other.Image = "debugger-other", "toolbox"
	ended := *want
	ended.Name = "debugger-ended"
	tests := []struct {
		name   string
		ecs    []corev1.EphemeralContainer
		status []corev1.ContainerStatus
		reuse  string
	}{
		{"same and running", []corev1.EphemeralContainer{same}, []corev1.ContainerStatus{runningStatus(same.Name)}, same.Name},
		{"an interactive debugger", []corev1.EphemeralContainer{shell}, []corev1.ContainerStatus{runningStatus(shell.Name)}, ""},
		{"another image", []corev1.EphemeralContainer{other}, []corev1.ContainerStatus{runningStatus(other.Name)}, ""},
		{"ended", []corev1.EphemeralContainer{ended}, []corev1.ContainerStatus{{Name: ended.Name,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := p.DeepCopy()
			q.Spec.EphemeralContainers, q.Status.EphemeralContainerStatuses = tt.ecs, tt.status
			name, ok := idleHelper(q, want)
			if name != tt.reuse || ok != (tt.reuse != "") {
				t.Errorf("idleHelper = %q %v, want %q", name, ok, tt.reuse)
			}
		})
	}
}

// TestHelperNeedsExec: without pods/exec nothing is added to the pod.
func TestHelperNeedsExec(t *testing.T) {
	cs, calls := fakeWithPatch(nil, testPod("web"))
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = r.Spec.ResourceAttributes.Subresource != "exec"
		return true, r, nil
	})
	b := NewForClient(Options{}, clientset{cs}, nil, "shop")
	ref := target.Ref{Scheme: target.SchemePod, Name: "web", Raw: "pod/web"}
	err := b.CopyFrom(context.Background(), ref, "/etc/hosts", runtime.CopyOptions{}, nil)
	if !errors.Is(err, runtime.ErrPermission) || !strings.Contains(err.Error(), "pods/exec") {
		t.Fatalf("error %v, want ErrPermission naming pods/exec", err)
	}
	if len(*calls) != 0 {
		t.Errorf("patch calls %v, want none", *calls)
	}
	if _, err := b.Inspect(context.Background(), target.Ref{Scheme: target.SchemeNode, Name: "n1", Raw: "node/n1"}); !errors.Is(err, runtime.ErrUsage) {
		t.Errorf("ns node/n1: %v, want a usage error", err)
	}
}

// TestResolveScript runs scriptResolve with the host's sh against a tree
// of links: every result stays inside the root.
func TestResolveScript(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, d := range []string{"etc", "data/v2", "a/b"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{
		"etc/abs":     "/data/v2",
		"data/cur":    "v2",
		"a/b/up":      "../../../../../etc",
		"a/escape":    "/../../../etc",
		"loop1":       "loop2",
		"loop2":       "loop1",
		"data/v2/rel": "../cur/",
	} {
		if err := os.Symlink(to, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"/etc/abs/x", "/data/v2/x"},
		{"/data/cur", "/data/v2"},
		{"/a/b/up/hosts", "/etc/hosts"},
		{"/a/escape", "/etc"},
		{"/../../..", ""},
		{"/data/v2/rel/rel/y", "/data/v2/y"},
		{"/no/such/../file", "/no/file"},
	} {
		out, err := exec.Command(sh, "-c", "R=$1; "+scriptResolve+"resolve \"$2\"", "sh", root, tt.in).CombinedOutput()
		if got := strings.TrimSuffix(string(out), "\n"); err != nil || got != tt.want {
			t.Errorf("resolve %s = %q (%v), want %q", tt.in, out, err, tt.want)
		}
	}
	out, err := exec.Command(sh, "-c", "R=$1; "+scriptResolve+"resolve /loop1", "sh", root).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != scriptUsage || !strings.Contains(string(out), "too many levels") {
		t.Errorf("a link loop: %v %q, want exit %d saying too many levels", err, out, scriptUsage)
	}
}

func TestParseReport(t *testing.T) {
	out := "@ns\nipc ipc:[1] ipc:[1]\nmnt mnt:[2] mnt:[3]\n@init\n/server\n-addr\n:80\n\n@uid_map\n         0          0 4294967295\n" +
		"@gid_map\n         0          0 4294967295\n@status\nCapEff:\t00000000a80425fb\nSeccomp:\t2\n@cgroup\n0::/kubepods/x\n@root\n/\n"
	want := &runtime.NamespaceReport{
		Namespaces: []runtime.Namespace{{Type: "ipc", Target: "ipc:[1]", Debug: "ipc:[1]", Shared: true}, {Type: "mnt", Target: "mnt:[2]", Debug: "mnt:[3]"}},
		Init:       []string{"/server", "-addr", ":80"}, UIDMap: []string{"0 0 4294967295"}, GIDMap: []string{"0 0 4294967295"},
		CapEff: "00000000a80425fb", Seccomp: "filter", Cgroup: []string{"0::/kubepods/x"}, Root: "/",
	}
	if diff := cmp.Diff(want, parseReport(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTcpdumpArgs(t *testing.T) {
	for _, tt := range []struct {
		o    runtime.CaptureOptions
		want []string
	}{
		{runtime.CaptureOptions{}, []string{"-i", "any"}},
		{runtime.CaptureOptions{Interface: "eth0", Count: 5, Filter: "tcp port 80"}, []string{"-i", "eth0", "-c", "5", "--", "tcp port 80"}},
		{runtime.CaptureOptions{Filter: "-w /etc/passwd"}, []string{"-i", "any", "--", "-w /etc/passwd"}},
	} {
		got, err := tcpdumpArgs(tt.o)
		if err != nil || !cmp.Equal(tt.want, got) {
			t.Errorf("tcpdumpArgs(%+v) = %q, %v; want %q", tt.o, got, err, tt.want)
		}
	}
	if _, err := tcpdumpArgs(runtime.CaptureOptions{Interface: "-r/etc/x"}); !errors.Is(err, runtime.ErrUsage) {
		t.Errorf("an interface starting with -: %v, want a usage error", err)
	}
}

// TestHelperBaselineFallback: where PodSecurity baseline refuses general's
// SYS_PTRACE, a root target's helper is added with the baseline profile.
func TestHelperBaselineFallback(t *testing.T) {
	cs, _ := fakeWithPatch(nil, testPod("web"))
	var calls []string
	cs.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		pa := a.(k8stesting.PatchActionImpl)
		ptrace := strings.Contains(string(pa.GetPatch()), "SYS_PTRACE")
		calls = append(calls, map[bool]string{true: "general", false: "baseline"}[ptrace])
		if ptrace {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web",
				errors.New(`violates PodSecurity "baseline:latest": non-default capabilities`))
		}
		return false, nil, nil
	})
	b := NewForClient(Options{Timeout: 50 * time.Millisecond}, clientset{cs}, nil, "shop")
	ref := target.Ref{Scheme: target.SchemePod, Name: "web", Raw: "pod/web"}
	err := b.CopyFrom(context.Background(), ref, "/etc/hosts", runtime.CopyOptions{}, io.Discard)
	if !errors.Is(err, runtime.ErrTimeout) {
		t.Fatalf("error %v, want the fake's timeout after the patch", err)
	}
	if diff := cmp.Diff([]string{"general", "baseline"}, calls); diff != "" {
		t.Errorf("patches (-want +got):\n%s", diff)
	}
	p, _ := cs.CoreV1().Pods("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if len(p.Spec.EphemeralContainers) != 1 || p.Spec.EphemeralContainers[0].SecurityContext != nil {
		t.Errorf("ephemeral containers %+v, want one with the runtime's defaults", p.Spec.EphemeralContainers)
	}
}

// TestCaptureRefusedByAdmission: a namespace that refuses netadmin gets
// one line saying capture needs it, and nothing is added.
func TestCaptureRefusedByAdmission(t *testing.T) {
	cs, calls := fakeWithPatch(apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web",
		errors.New(`violates PodSecurity "restricted:latest": unrestricted capabilities`)), testPod("web"))
	b := NewForClient(Options{}, clientset{cs}, nil, "shop")
	err := b.Capture(context.Background(), target.Ref{Scheme: target.SchemePod, Name: "web", Raw: "pod/web"}, runtime.CaptureOptions{}, io.Discard)
	if !errors.Is(err, runtime.ErrPermission) || !strings.Contains(err.Error(), "capture needs a helper debug container with the netadmin profile") ||
		!strings.Contains(err.Error(), "violates PodSecurity") || strings.Contains(err.Error(), "--profile") {
		t.Fatalf("error %v, want ErrPermission saying capture needs netadmin", err)
	}
	if diff := cmp.Diff([]string{"patch"}, *calls); diff != "" {
		t.Errorf("patch calls (-want +got):\n%s", diff)
	}
	p, _ := cs.CoreV1().Pods("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if len(p.Spec.EphemeralContainers) != 0 {
		t.Errorf("ephemeral containers %+v, want none", p.Spec.EphemeralContainers)
	}
}
