//go:build e2e_kube

package kube_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSmokeDistroless is the seed scenario on the real cluster: a shell-less
// workload, `kubectl exec sh` failing, and `kubectl debug --target` with
// busybox from the local registry reaching the workload's network and
// filesystem.
func TestSmokeDistroless(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	w, err := cluster.DeployDistroless(ctx, ns, "pyserv")
	if err != nil {
		t.Fatal(err)
	}

	_, stderr, err := cluster.Kubectl(ctx, "-n", ns, "exec", w.Pod.Name, "-c", w.Container, "--", "sh", "-c", "true")
	if err == nil {
		t.Fatal("kubectl exec sh in the distroless container succeeded; want a failure (no shell)")
	}
	if !strings.Contains(stderr, `"sh": executable file not found`) {
		t.Errorf("kubectl exec sh stderr = %q, want it to say sh is not found", stderr)
	}

	script := `wget -qO- http://localhost:80/; echo "ROOT: $(ls /proc/1/root/ | tr '\n' ' ')";` +
		` for n in pid net ipc uts mnt; do echo "NS $n $(readlink /proc/self/ns/$n) $(readlink /proc/1/ns/$n)"; done`
	logs := debug(ctx, t, ns, w.Pod.Name, w.Container, "debugger", cluster.Image("busybox"), "sh", "-c", script)
	if !strings.Contains(logs, "OK - GET: Request completed") {
		t.Errorf("debug container output lacks the workload's reply:\n%s", logs)
	}
	root := regexp.MustCompile(`(?m)^ROOT: (.*)$`).FindStringSubmatch(logs)
	if root == nil || !strings.Contains(root[1], "server") || strings.Contains(root[1], "bin") {
		t.Errorf("/proc/1/root of the target = %q, want the distroless rootfs (server, no bin)", root)
	}
	for _, m := range regexp.MustCompile(`(?m)^NS (\w+) (\S+) (\S+)$`).FindAllStringSubmatch(logs, -1) {
		same := m[2] == m[3]
		if want := m[1] != "mnt"; same != want {
			t.Errorf("%s namespace shared with the target = %t, want %t (%s vs %s)", m[1], same, want, m[2], m[3])
		}
	}
}

// TestDebugToolbox attaches the toolbox image (real tcpdump, curl, iproute2,
// strace) to the distroless workload.
func TestDebugToolbox(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	w, err := cluster.DeployDistroless(ctx, ns, "pyserv")
	if err != nil {
		t.Fatal(err)
	}
	script := `curl -sS http://localhost:80/ && ip -o -4 addr show eth0 && tcpdump --version 2>&1 | head -1 && strace -V | head -1 && ps -e -o pid,comm`
	logs := debug(ctx, t, ns, w.Pod.Name, w.Container, "toolbox", cluster.Image("toolbox"), "bash", "-c", script)
	for _, want := range []string{"OK - GET: Request completed", w.Pod.Status.PodIP + "/", "tcpdump version", "strace -- version", "server"} {
		if !strings.Contains(logs, want) {
			t.Errorf("toolbox output lacks %q:\n%s", want, logs)
		}
	}
}

// debug runs `kubectl debug --target` with cmd in an ephemeral container,
// waits for it to finish with exit code 0 and returns its logs.
func debug(ctx context.Context, t *testing.T, ns, pod, target, name, image string, cmd ...string) string {
	t.Helper()
	start := time.Now()
	args := append([]string{"-n", ns, "debug", pod, "--image", image, "--target", target,
		"--profile", "general", "-c", name, "--"}, cmd...)
	if _, _, err := cluster.Kubectl(ctx, args...); err != nil {
		t.Fatal(err)
	}
	term, err := cluster.WaitEphemeralTerminated(ctx, ns, pod, name)
	if err != nil {
		t.Fatal(err)
	}
	logs, _, err := cluster.Kubectl(ctx, "-n", ns, "logs", pod, "-c", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("debug container %s finished in %s with exit code %d", name, time.Since(start).Round(time.Millisecond), term.ExitCode)
	if term.ExitCode != 0 {
		t.Fatalf("debug container %s exited %d (%s); output:\n%s", name, term.ExitCode, term.Reason, logs)
	}
	p, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, pod, getOpts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Status.EphemeralContainerStatuses {
		if s.Name == name && !strings.HasPrefix(s.ImageID, cluster.Registry+"/") {
			t.Errorf("debug image ID = %q, want it pulled from %s", s.ImageID, cluster.Registry)
		}
	}
	return fmt.Sprint(logs)
}
