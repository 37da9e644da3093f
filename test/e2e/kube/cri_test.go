//go:build e2e_kube

package kube_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/test/e2e/kube"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// criReply is what the cri:// test pod's server serves on 127.0.0.1.
const criReply = "cri-e2e: hello from the pod loopback"

// TestCRITargets debugs a pod's container on the node through the test
// cluster's containerd CRI socket (cri://NAMESPACE/POD/CONTAINER, cri://ID,
// an ID prefix, a bare container name), without the API server: the debug
// container reaches the pod's 127.0.0.1, sees its files at /proc/1/root
// and is in its namespaces; and every error is one line with its code.
func TestCRITargets(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	bin := e2eutil.BuildEphem(t)
	sock := filepath.Join(cluster.Dir, "containerd", "containerd.sock")
	endpoint := "CONTAINER_RUNTIME_ENDPOINT=unix://" + sock
	busybox := cluster.Image("busybox")
	web := fmt.Sprintf("cri-web-%d", time.Now().UnixNano()%100000)
	pod := criPod(ctx, t, ns, web, busybox)
	webID := containerID(t, pod, web)
	ref := "cri://" + ns + "/" + pod.Name

	// cri://NS/POD/CONTAINER: the pod's loopback, files and namespaces.
	r := criEphem(t, bin, []string{endpoint}, "debug", ref+"/"+web, "--image", busybox, "--",
		"sh", "-c", "wget -qO- 127.0.0.1:8080; cat /proc/1/root/www/marker; for n in net ipc uts pid; do readlink /proc/self/ns/$n; done")
	if r.Code != 0 {
		t.Fatalf("debug %s/%s: exit %d\nstdout: %s\nstderr: %s", ref, web, r.Code, r.Stdout, r.Stderr)
	}
	hostPID := taskPID(ctx, t, sock, webID)
	want := criReply + "\n" + web + "-marker\n" + nsLinks(t, hostPID)
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("debug %s/%s: exit %d, stdout %q, want %q\nstderr: %s", ref, web, r.Code, r.Stdout, want, r.Stderr)
	}

	// cri://ID, and a 12-digit prefix of it.
	for _, id := range []string{webID, webID[:12]} {
		r = criEphem(t, bin, []string{endpoint}, "debug", "cri://"+id, "--image", busybox, "--", "wget", "-qO-", "127.0.0.1:8080")
		if r.Code != 0 || r.Stdout != criReply+"\n" {
			t.Errorf("debug cri://%s: exit %d, stdout %q\nstderr: %s", id, r.Code, r.Stdout, r.Stderr)
		}
	}
	// A bare name: the pod's container, found by its name through CRI.
	r = criEphem(t, bin, []string{endpoint}, "debug", web, "--image", busybox, "--", "cat", "/proc/1/root/www/marker")
	if r.Code != 0 || r.Stdout != web+"-marker\n" {
		t.Errorf("debug %s (bare name): exit %d, stdout %q\nstderr: %s", web, r.Code, r.Stdout, r.Stderr)
	}
	// The command's exit code comes back.
	if r = criEphem(t, bin, []string{endpoint}, "debug", ref+"/side", "--image", busybox, "--", "sh", "-c", "exit 5"); r.Code != 5 {
		t.Errorf("exit 5 in %s/side: got %d\nstderr: %s", ref, r.Code, r.Stderr)
	}

	// Without the runtime's socket, a full ID is still found from /proc.
	r = criEphem(t, bin, []string{"CONTAINER_RUNTIME_ENDPOINT=unix:///nonexistent/cri.sock"}, "debug", "cri://"+webID, "--image", busybox, "--",
		"wget", "-qO-", "127.0.0.1:8080")
	if r.Code != 0 || r.Stdout != criReply+"\n" || !strings.Contains(r.Stderr, "without the runtime's API") {
		t.Errorf("socket-less cri://ID: exit %d, stdout %q, want the reply and a notice on stderr\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}

	for _, c := range []struct {
		name string
		env  []string
		ref  string
		code int
		says string
	}{
		{"several containers", []string{endpoint}, ref, 64, "runs 2 containers: name one: " + ref + "/" + web + ", " + ref + "/side"},
		{"unknown pod", []string{endpoint}, "cri://" + ns + "/no-such-pod/web", 66, "runs no pod " + ns + "/no-such-pod"},
		{"unknown container", []string{endpoint}, ref + "/nope", 66, `has no running container "nope"`},
		{"unknown ID", []string{endpoint}, "cri://" + strings.Repeat("0", 64), 66, "has no container " + strings.Repeat("0", 64)},
		{"ambiguous prefix", []string{endpoint}, "cri://" + sharedPrefix(ctx, t, sock), 64, "begins the IDs of"},
		{"malformed", []string{endpoint}, "cri://Web", 64, "a CRI container ID is lowercase hex digits"},
		{"socket absent", []string{"CONTAINER_RUNTIME_ENDPOINT=unix:///nonexistent/cri.sock"}, ref + "/" + web, 68,
			"connecting to the CRI runtime at unix:///nonexistent/cri.sock"},
		{"no runtime installed", []string{"CONTAINER_RUNTIME_ENDPOINT="}, ref + "/" + web, 68,
			"no CRI runtime answers on this host: dial unix /run/containerd/containerd.sock"},
		{"endpoint not a socket path", []string{"CONTAINER_RUNTIME_ENDPOINT=tcp://127.0.0.1:1"}, ref + "/" + web, 64, "is not a unix socket"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "no runtime installed" && usualCRISocket() != "" {
				t.Skipf("%s exists on this host: cannot try a host without a CRI runtime (the unit tests do)", usualCRISocket())
			}
			if c.ref == "cri://" {
				t.Skip("the node's CRI container IDs all begin with different digits: no ambiguous prefix to try (the unit tests cover it)")
			}
			r := criEphem(t, bin, c.env, "debug", c.ref, "--image", busybox, "--", "true")
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			if r.Code != c.code || len(lines) != 1 || !strings.Contains(r.Stderr, c.says) {
				t.Errorf("debug %s: exit %d, want %d with one line saying %q\nstderr: %s", c.ref, r.Code, c.code, c.says, r.Stderr)
			}
		})
	}

	// A container that is gone: its pod deleted, its ID is not found.
	if err := cluster.Client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	err := kube.Poll(ctx, "the pod's container to be removed", func(ctx context.Context) (bool, string, error) {
		_, err := exec.CommandContext(ctx, "ctr", "-a", sock, "-n", "k8s.io", "containers", "info", webID).Output()
		return err != nil, "still listed", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r = criEphem(t, bin, []string{endpoint}, "debug", "cri://"+webID, "--image", busybox, "--", "true")
	if r.Code != 66 || !strings.Contains(r.Stderr, "has no container "+webID) {
		t.Errorf("a container that is gone: exit %d, want 66 saying so\nstderr: %s", r.Code, r.Stderr)
	}
}

// criEphem runs the ephem binary bin with env added, without the test
// cluster's API server (KUBECONFIG points nowhere): cri:// needs only the
// node.
func criEphem(t *testing.T, bin string, env []string, args ...string) ephemResult {
	t.Helper()
	return runEphemBin(t, bin, append([]string{"KUBECONFIG=/nonexistent/kubeconfig"}, env...), "", args...)
}

// criPod runs pod NAME in ns: container web serves criReply on
// 127.0.0.1:8080 only and has /www/marker; container "side" sleeps.
func criPod(ctx context.Context, t *testing.T, ns, web, image string) *corev1.Pod {
	t.Helper()
	grace := int64(0)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cri-pod", Namespace: ns},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken:  new(bool),
			Containers: []corev1.Container{{
				Name:  web,
				Image: image,
				Command: []string{"sh", "-c", "mkdir -p /www && echo '" + criReply + "' >/www/index.html && echo " + web +
					"-marker >/www/marker && exec httpd -f -p 127.0.0.1:8080 -h /www"},
			}, {
				Name: "side", Image: image, Command: []string{"sleep", "3600"},
			}},
		},
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	pod, err := cluster.WaitPod(ctx, ns, p.Name, "Ready", kube.PodReady)
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// containerID returns the CRI ID of the pod's container called name.
func containerID(t *testing.T, pod *corev1.Pod, name string) string {
	t.Helper()
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == name {
			_, id, _ := strings.Cut(s.ContainerID, "://")
			return id
		}
	}
	t.Fatalf("pod %s has no container %s", pod.Name, name)
	return ""
}

// taskPID asks containerd (ctr) for the host PID of container id's task.
func taskPID(ctx context.Context, t *testing.T, sock, id string) int {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ctr", "-a", sock, "-n", "k8s.io", "tasks", "ls").Output()
	if err != nil {
		t.Fatalf("ctr tasks ls: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err == nil {
				return pid
			}
		}
	}
	t.Fatalf("ctr lists no task %s:\n%s", id, out)
	return 0
}

// nsLinks is what readlink prints for pid's net, ipc, uts and pid
// namespaces, one a line.
func nsLinks(t *testing.T, pid int) string {
	t.Helper()
	var b strings.Builder
	for _, n := range []string{"net", "ipc", "uts", "pid"} {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// usualCRISocket returns the first of the usual CRI sockets that exists.
func usualCRISocket() string {
	for _, p := range []string{"/run/containerd/containerd.sock", "/run/crio/crio.sock", "/var/run/cri-dockerd.sock"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// sharedPrefix returns a one-digit prefix that begins the IDs of two or
// more of the node's CRI containers (not sandboxes), or "" when their IDs
// all begin differently.
func sharedPrefix(ctx context.Context, t *testing.T, sock string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ctr", "-a", sock, "-n", "k8s.io", "containers", "ls", "-q",
		`labels."io.cri-containerd.kind"==container`).Output()
	if err != nil {
		t.Fatalf("ctr containers ls: %v", err)
	}
	seen := map[byte]bool{}
	for _, id := range strings.Fields(string(out)) {
		if seen[id[0]] {
			return id[:1]
		}
		seen[id[0]] = true
	}
	return ""
}
