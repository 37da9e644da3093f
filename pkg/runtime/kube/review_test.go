package kube

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	authv1 "k8s.io/api/authorization/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestReviewCacheAsksOnce: the pods of a fan-out share one access review
// per question, however many ask at once; without a cache every call asks.
func TestReviewCacheAsksOnce(t *testing.T) {
	cs := fake.NewClientset()
	var asked atomic.Int32
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, kruntime.Object, error) {
		asked.Add(1)
		r := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		r.Status.Allowed = r.Spec.ResourceAttributes.Subresource == "log"
		return true, r, nil
	})
	client := clientset{cs}
	logs := authv1.ResourceAttributes{Namespace: "shop", Verb: "get", Resource: "pods", Subresource: "log"}
	attach := authv1.ResourceAttributes{Namespace: "shop", Verb: "create", Resource: "pods", Subresource: "attach"}
	c := &reviewCache{}
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := logs
			if ok, err := c.allowed(context.Background(), client, &a); !ok || err != nil {
				t.Errorf("logs: %v %v, want allowed", ok, err)
			}
		}()
	}
	wg.Wait()
	a := attach
	if ok, err := c.allowed(context.Background(), client, &a); ok || err != nil {
		t.Errorf("attach: %v %v, want refused", ok, err)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("31 questions of 2 kinds made %d reviews, want 2", n)
	}
	var none *reviewCache
	for range 3 {
		a := logs
		_, _ = none.allowed(context.Background(), client, &a)
	}
	if n := asked.Load(); n != 5 {
		t.Errorf("without a cache: %d reviews in all, want 5", n)
	}
}
