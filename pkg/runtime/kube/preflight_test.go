package kube

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestPreflightCacheOncePerController: the pods of one controller share
// one preflight, whose refusal each of them reports naming the pod it was
// asked for; pods of another controller, or of none, ask their own.
func TestPreflightCacheOncePerController(t *testing.T) {
	pod := func(name string, owner types.UID) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
		if owner != "" {
			yes := true
			p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-" + string(owner), UID: owner, Controller: &yes}}
		}
		return p
	}
	ec := &corev1.EphemeralContainer{}
	ec.TargetContainerName = "app"
	refused := errors.New("admission webhook denied the request")
	var asked atomic.Int32
	ask := func(err error) func() error {
		return func() error { asked.Add(1); return err }
	}
	c := &preflightCache{}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.check(pod("web-"+strings.Repeat("x", i+1), "a"), ec, ask(refused))
		}()
	}
	wg.Wait()
	if n := asked.Load(); n != 1 {
		t.Fatalf("20 pods of one ReplicaSet asked %d preflights, want 1", n)
	}
	for i, err := range errs {
		if !errors.Is(err, refused) {
			t.Errorf("pod %d: %v, want the group's refusal", i, err)
		}
		if err != nil && err.Error() != refused.Error() && !strings.Contains(err.Error(), "of the same ReplicaSet web-a") {
			t.Errorf("pod %d: %q does not say whose preflight it was", i, err)
		}
	}
	if err := c.check(pod("api-1", "b"), ec, ask(nil)); err != nil || asked.Load() != 2 {
		t.Errorf("another controller: %v after %d preflights, want its own (2)", err, asked.Load())
	}
	other := *ec
	other.TargetContainerName = "sidecar"
	if err := c.check(pod("web-y", "a"), &other, ask(nil)); err != nil || asked.Load() != 3 {
		t.Errorf("another target container: %v after %d preflights, want its own (3)", err, asked.Load())
	}
	for range 2 {
		_ = c.check(pod("bare", ""), ec, ask(nil))
	}
	if n := asked.Load(); n != 5 {
		t.Errorf("a pod of no controller asks each time: %d preflights, want 5", n)
	}
}
