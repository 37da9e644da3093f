package kube

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestBackendConcurrentUse: one Backend serves calls in different
// namespaces at once (run with -race); none changes what another sees, nor
// the backend's default namespace.
func TestBackendConcurrentUse(t *testing.T) {
	inOther := testPod("web", func(p *corev1.Pod) { p.Namespace = "other"; p.Spec.Containers[0].Name = "other-app" })
	cs := fake.NewClientset(testPod("web"), inOther)
	b := NewForClient(Options{DryRun: true}, clientset{cs}, nil, "shop")
	refs := []target.Ref{{Scheme: target.SchemePod, Name: "web", Raw: "pod/web"},
		{Scheme: target.SchemePod, Namespace: "other", Name: "web", Raw: "k8s://other/web"}}
	want := []string{"targetContainerName: app", "targetContainerName: other-app"}
	var wg sync.WaitGroup
	for round := 0; round < 10; round++ {
		for i, ref := range refs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out bytes.Buffer
				err := b.Debug(context.Background(), ref, spec.Container{Image: "busybox", SharePID: true}, session.Streams{Out: &out, Err: &out})
				if err != nil || !strings.Contains(out.String(), want[i]) {
					t.Errorf("%s: %v\n%s\nwant %q", ref, err, out.String(), want[i])
				}
			}()
		}
	}
	wg.Wait()
	if b.namespace != "shop" {
		t.Errorf("the backend's namespace became %q", b.namespace)
	}
}
