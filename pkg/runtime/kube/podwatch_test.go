package kube

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// hubClient hands out the watches the test drives: a label-selector watch
// (the hub's) gets the next of shared, or an error if failShared; a
// field-selector watch (a pod's own) gets a watch of its pod's states.
type hubClient struct {
	clientset
	shared     chan *watch.FakeWatcher
	failShared bool
	perPod     map[string][]*corev1.Pod // a nil state is a deletion
	sharedN    atomic.Int32
	podN       atomic.Int32
}

func (c *hubClient) WatchPods(ctx context.Context, _ string, opts metav1.ListOptions) (watch.Interface, error) {
	if opts.LabelSelector != "" {
		c.sharedN.Add(1)
		if c.failShared {
			return nil, errors.New("watch refused")
		}
		select {
		case w := <-c.shared:
			return w, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.podN.Add(1)
	w := watch.NewFake()
	var states []*corev1.Pod
	for name, s := range c.perPod {
		if opts.FieldSelector == "metadata.name="+name {
			states = s
		}
	}
	go func() {
		for _, s := range states {
			if s == nil {
				w.Delete(testPod("gone"))
				continue
			}
			w.Modify(s)
		}
	}()
	return w, nil
}

// debugged is pod name with ephemeral container "dbg-"+name in state s,
// and an older debug container beside it.
func debugged(name string, s corev1.ContainerState) *corev1.Pod {
	p := testPod(name)
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{
		{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "old"}},
		{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg-" + name, Image: "busybox"}, TargetContainerName: "app"},
	}
	p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{
		{Name: "old", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 9}}},
		{Name: "dbg-" + name, State: s},
	}
	return p
}

var (
	creating = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	runState = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	exited   = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}
)

// waitAll waits, with a hub over names, for each pod's debug container to
// terminate, and returns each waiter's pod and error.
func waitAll(t *testing.T, c Client, names []string, drive func()) ([]*corev1.Pod, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := NewForClient(Options{Timeout: 5 * time.Second}, c, nil, "shop")
	hub := startHub(ctx, c, "shop", podListing{selector: "app=web", resourceVersion: "1"}, names)
	defer hub.stop()
	pods := make([]*corev1.Pod, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		hub.expect(n, "dbg-"+n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := b.newCall()
			k.hub = hub
			pods[i], errs[i] = k.waitFor(ctx, debugged(n, creating), "dbg-"+n, "terminated", terminated)
		}()
	}
	drive()
	wg.Wait()
	return pods, errs
}

func TestPodHubOneWatchForAllPods(t *testing.T) {
	c := &hubClient{clientset: clientset{fake.NewClientset()}, shared: make(chan *watch.FakeWatcher, 1)}
	w := watch.NewFake()
	c.shared <- w
	names := []string{"a", "b", "c"}
	pods, errs := waitAll(t, c, names, func() {
		for _, st := range []corev1.ContainerState{creating, runState, exited} {
			for _, n := range names {
				w.Modify(debugged(n, st))
			}
		}
		w.Modify(debugged("not-ours", exited))
	})
	for i, n := range names {
		if errs[i] != nil {
			t.Fatalf("pod %s: %v", n, errs[i])
		}
		var exit *runtime.ExitError
		if err := exitOf(pods[i], "dbg-"+n); !errors.As(err, &exit) || exit.Code != 3 {
			t.Errorf("pod %s: exit %v, want 3", n, err)
		}
		// The hub keeps the session's container alone.
		if got := len(pods[i].Spec.EphemeralContainers) + len(pods[i].Status.EphemeralContainerStatuses); got != 2 {
			t.Errorf("pod %s: kept %d containers and statuses, want the one container and its status", n, got)
		}
		if ec, ok := ephemeral(pods[i], "dbg-"+n); !ok || ec.TargetContainerName != "app" {
			t.Errorf("pod %s: lost the debug container's spec", n)
		}
	}
	if s, p := c.sharedN.Load(), c.podN.Load(); s != 1 || p != 0 {
		t.Errorf("%d shared and %d per-pod watches, want 1 and 0", s, p)
	}
}

func TestPodHubFallsBackToPodWatches(t *testing.T) {
	names := []string{"a", "b"}
	c := &hubClient{clientset: clientset{fake.NewClientset()}, failShared: true, perPod: map[string][]*corev1.Pod{}}
	for _, n := range names {
		c.perPod[n] = []*corev1.Pod{debugged(n, runState), debugged(n, exited)}
	}
	pods, errs := waitAll(t, c, names, func() {})
	for i, n := range names {
		if errs[i] != nil {
			t.Fatalf("pod %s: %v", n, errs[i])
		}
		if exitOf(pods[i], "dbg-"+n) == nil {
			t.Errorf("pod %s: no exit code", n)
		}
	}
	if s, p := c.sharedN.Load(), c.podN.Load(); s != hubRetries || p != 2 {
		t.Errorf("%d shared and %d per-pod watches, want %d and 2", s, p, hubRetries)
	}
}

func TestPodHubRelistsAndHandsOverLostPods(t *testing.T) {
	// After an error event (the resource version expired), the hub lists
	// again: pod a has ended meanwhile; pod b is no longer in the list,
	// and its session watches it alone, which sees its deletion.
	cs := fake.NewClientset(debugged("a", exited))
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, kruntime.Object, error) {
		return true, &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "9"}, Items: []corev1.Pod{*debugged("a", exited)}}, nil
	})
	c := &hubClient{clientset: clientset{cs}, shared: make(chan *watch.FakeWatcher, 2), perPod: map[string][]*corev1.Pod{"b": {nil}}}
	w1, w2 := watch.NewFake(), watch.NewFake()
	c.shared <- w1
	c.shared <- w2
	pods, errs := waitAll(t, c, []string{"a", "b"}, func() {
		w1.Error(&metav1.Status{Reason: metav1.StatusReasonExpired})
	})
	if errs[0] != nil || exitOf(pods[0], "dbg-a") == nil {
		t.Errorf("pod a: %v, want its exit code from the new list", errs[0])
	}
	if !errors.Is(errs[1], runtime.ErrTargetGone) {
		t.Errorf("pod b: %v, want ErrTargetGone from its own watch", errs[1])
	}
	if s, p := c.sharedN.Load(), c.podN.Load(); s != 2 || p != 1 {
		t.Errorf("%d shared and %d per-pod watches, want 2 (one after the list) and 1 (pod b's)", s, p)
	}
}

func TestPodHubRelabelledPodRunsOn(t *testing.T) {
	// Taking a pod out of its Service by relabelling it makes it leave a
	// label-selector watch as if deleted: its session goes on, on a watch
	// of its own.
	c := &hubClient{clientset: clientset{fake.NewClientset()}, shared: make(chan *watch.FakeWatcher, 1),
		perPod: map[string][]*corev1.Pod{"a": {debugged("a", exited)}}}
	w := watch.NewFake()
	c.shared <- w
	pods, errs := waitAll(t, c, []string{"a"}, func() {
		w.Modify(debugged("a", runState))
		w.Delete(debugged("a", runState))
	})
	if errs[0] != nil || exitOf(pods[0], "dbg-a") == nil {
		t.Errorf("relabelled pod: %v, want its exit code", errs[0])
	}
	if p := c.podN.Load(); p != 1 {
		t.Errorf("%d per-pod watches, want 1", p)
	}
}
