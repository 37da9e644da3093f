//go:build e2e_kube

package kube_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEphemNodeProfiles: on a node, the profile decides what of the host the
// debugging pod shares, as with kubectl: netadmin the host's namespaces but
// not its root, baseline neither.
func TestEphemNodeProfiles(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	nodes, err := cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("listing nodes: %v", err)
	}
	node := "node/" + nodes.Items[0].Name
	script := "cat /proc/1/comm; test -d /host/etc && echo has-host || echo no-host"
	out := mustEphem(t, ns, "debug", node, "--profile", "netadmin", "--image", cluster.Image("busybox"), "--", "sh", "-c", script)
	if strings.HasPrefix(out, "sh\n") || !strings.Contains(out, "no-host") {
		t.Errorf("netadmin on a node: %q, want the host's PID 1 and no /host", out)
	}
	out = mustEphem(t, ns, "debug", node, "--profile", "baseline", "--image", cluster.Image("busybox"), "--", "sh", "-c", script)
	if !strings.HasPrefix(out, "sh\n") || !strings.Contains(out, "no-host") {
		t.Errorf("baseline on a node: %q, want its own PID namespace (sh as PID 1) and no /host", out)
	}
}
