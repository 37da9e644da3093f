//go:build e2e_kube

package kube_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/test/e2e/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEphemNode debugs the cluster's node (node/NAME): the debug pod sees
// the host's root at /host and the host's PID namespace, its exit code
// comes back, --rm (the default) deletes it and --rm=false keeps it.
func TestEphemNode(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	nodeName := firstNode(ctx, t)
	node := nodeName
	busybox := cluster.Image("busybox")
	// The node is this machine: its PID 1 and hostname are ours.
	hostInit, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		t.Fatal(err)
	}
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	out := mustEphem(t, ns, "debug", "node/"+node, "--image", busybox, "--",
		"sh", "-c", "ls /host/etc/hostname && cat /proc/1/comm && hostname")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "/host/etc/hostname" || lines[1] != strings.TrimSpace(string(hostInit)) || lines[1] == "pause" || lines[2] != hostname {
		t.Errorf("node debugger output %q, want /host/etc/hostname, the host's init %q and hostname %q", lines, strings.TrimSpace(string(hostInit)), hostname)
	}
	waitNoPods(ctx, t, ns)

	if r := ephem(t, ns, "debug", "node/"+node, "--image", busybox, "--", "sh", "-c", "exit 4"); r.Code != 4 {
		t.Errorf("exit 4 on the node: got %d\nstderr: %s", r.Code, r.Stderr)
	}
	waitNoPods(ctx, t, ns)

	r := ephem(t, ns, "debug", "node/"+node, "--rm=false", "--image", busybox, "--", "true")
	if r.Code != 0 || !strings.Contains(r.Stderr, "kubectl delete pod node-debugger-"+node+"-") {
		t.Errorf("--rm=false: exit %d, want 0 saying how to delete the pod\nstderr: %s", r.Code, r.Stderr)
	}
	pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("--rm=false: %d pods, want the node pod kept", len(pods.Items))
	}
	if p := pods.Items[0]; !strings.HasPrefix(p.Name, "node-debugger-"+node+"-") || p.Spec.NodeName != node ||
		!p.Spec.HostPID || !p.Spec.HostNetwork || !p.Spec.HostIPC || p.Labels["app.kubernetes.io/managed-by"] != "ephem" {
		t.Errorf("kept node pod %s: node %q, host PID/network/IPC %v/%v/%v, labels %v", p.Name, p.Spec.NodeName,
			p.Spec.HostPID, p.Spec.HostNetwork, p.Spec.HostIPC, p.Labels)
	}

	if r := ephem(t, ns, "debug", "node/no-such-node", "--image", busybox, "--", "true"); r.Code != 66 || !strings.Contains(r.Stderr, `no node "no-such-node"`) {
		t.Errorf("a missing node: exit %d, want 66 naming it\nstderr: %s", r.Code, r.Stderr)
	}
}

// waitNoPods waits until namespace ns has no pods left.
func waitNoPods(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	err := kube.Poll(ctx, "the node debugging pod to be deleted", func(ctx context.Context) (bool, string, error) {
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		var names []string
		for _, p := range pods.Items {
			names = append(names, p.Name)
		}
		return len(names) == 0, fmt.Sprint(names), nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestEphemNodeTTY runs an interactive shell on the node: it sees the
// host's init, its exit code comes back and the pod is deleted.
func TestEphemNodeTTY(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	nodeName := firstNode(ctx, t)
	term := ephemTTY(t, ns, "debug", "node/"+nodeName, "-it", "--image", cluster.Image("busybox"), "--", "sh")
	term.expect(t, "If you don't see a command prompt")
	term.send(t, "\r")
	term.expect(t, "# ")
	term.send(t, "ls /host/etc/hostname; echo tty-$((6*7))\r")
	term.expect(t, "tty-42")
	if s := term.screen(); !strings.Contains(s, "/host/etc/hostname") {
		t.Errorf("no /host/etc/hostname:\n%s", s)
	}
	term.send(t, "exit 5\r")
	if code := term.wait(t); code != 5 {
		t.Errorf("exit %d, want the shell's 5:\n%s", code, term.screen())
	}
	if strings.Count(term.screen(), "tty-42") > 1 {
		t.Errorf("the session's output was shown again:\n%s", term.screen())
	}
	waitNoPods(ctx, t, ns)
}
