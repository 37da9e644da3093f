package kube

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/remotecommand"
)

// checkTarget returns a warning when the container runtime ignored
// targetContainerName, else "":
// the debug container then shares the pod sandbox's PID namespace, whose
// PID 1 is the pause process, and the target's processes and /proc/1/root
// are not there. It asks the debug container itself (cat /proc/1/cmdline);
// an image without cat, or an exec that fails, leaves it unchecked.
func (b *call) checkTarget(ctx context.Context, p *corev1.Pod, name, target string) string {
	// With shareProcessNamespace every container sees the sandbox's PID
	// namespace, pause as PID 1 and the target's processes both.
	if target == "" || (p.Spec.ShareProcessNamespace != nil && *p.Spec.ShareProcessNamespace) {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	u := b.client.ExecURL(p.Namespace, p.Name, &corev1.PodExecOptions{
		Container: name, Command: []string{"cat", "/proc/1/cmdline"}, Stdout: true, Stderr: true,
	})
	exec, err := b.executor(u)
	if err != nil {
		return ""
	}
	var out, errOut bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}); err != nil {
		return ""
	}
	if !isPause(out.String()) {
		return ""
	}
	return fmt.Sprintf("warning: the container runtime ignored --target %s: PID 1 in %s is the pod's pause process, so %s's processes and /proc/1/root are not visible (containerd >= 1.6 or CRI-O >= 1.23 honour it)\n",
		target, name, target)
}

// isPause says whether a /proc/1/cmdline is the pod sandbox's pause process.
func isPause(cmdline string) bool {
	argv0, _, _ := strings.Cut(cmdline, "\x00")
	return path.Base(strings.TrimSpace(argv0)) == "pause"
}
