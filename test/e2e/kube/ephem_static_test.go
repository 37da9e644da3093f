//go:build e2e_kube

package kube_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/test/e2e/kube"
	corev1 "k8s.io/api/core/v1"
)

// TestEphemStaticPodRefused: the API server takes an ephemeral container
// into a static pod's mirror, but the kubelet never starts it
// (kubernetes#113935). ephem refuses before adding anything (69) and says
// what to do instead.
func TestEphemStaticPodRefused(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	node := firstNode(ctx, t)
	manifest := filepath.Join(kube.Dir(), "kubelet", "manifests", "ephem-static-"+ns+".yaml")
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: static
  namespace: %s
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %s
    command: ["sleep", "3600"]
`, ns, cluster.Image("busybox"))
	if err := os.WriteFile(manifest, []byte(pod), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(manifest) })
	mirror := "static-" + node
	if _, err := cluster.WaitPod(ctx, ns, mirror, "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }); err != nil {
		t.Fatal(err)
	}
	r := ephem(t, ns, "debug", "pod/"+mirror, "--image", cluster.Image("busybox"), "--", "true")
	if r.Code != 69 || !strings.Contains(r.Stderr, "static pod") || !strings.Contains(r.Stderr, "--copy-to") {
		t.Errorf("exit %d %q, want 69 naming the static pod and --copy-to", r.Code, r.Stderr)
	}
	if names := ephemeralNames(t, ns, mirror); len(names) != 0 {
		t.Errorf("ephemeral containers added to the static pod: %v", names)
	}
}
