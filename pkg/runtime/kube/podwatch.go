package kube

import (
	"context"
	"errors"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// podListing is the label selector and list resource version the pods of
// a fan-out came from: a watch from there sees every later change of them.
type podListing struct {
	selector, resourceVersion string
}

// errHubDown says the shared watch could not be (re)established, or the
// pod left it: the waiter falls back to a watch of its own pod.
var errHubDown = errors.New("the shared pod watch is down")

// podHub is one watch of a fan-out's pods shared by their sessions. Each
// session would otherwise watch its pod twice in turn (until the debug
// container runs, then until it ends): 60 watches held open on the API
// server for 30 pods, 60 HTTP/2 streams and decoders in ephem, and every
// event decoded once per watch. The hub keeps, per pod, only what the
// sessions read (the ephemeral containers and their statuses), so the
// decoded events are garbage at once.
type podHub struct {
	client Client
	ns     string
	sel    string

	// patches bounds the fan-out's patches in flight (addToPod).
	patches chan struct{}

	mu     sync.Mutex
	pods   map[string]*hubPod
	down   bool
	cancel context.CancelFunc
	done   chan struct{}
}

// hubPod is one pod's latest state and the channel closed when it changes.
type hubPod struct {
	p    *corev1.Pod // trimmed to want; nil until the first event
	want map[string]bool
	// lost says the pod left the watch: deleted, or relabelled out of the
	// selector (taking a pod out of a Service is done so). Its session
	// watches the pod itself from then on, which tells the two apart.
	lost    bool
	changed chan struct{}
}

// startHub watches the pods named in ns, matching sel, from the list's
// resource version rv, until stop.
func startHub(ctx context.Context, client Client, ns string, l podListing, names []string) *podHub {
	ctx, cancel := context.WithCancel(ctx)
	h := &podHub{client: client, ns: ns, sel: l.selector, pods: map[string]*hubPod{},
		patches: make(chan struct{}, fanOutPatches), cancel: cancel, done: make(chan struct{})}
	for _, n := range names {
		h.pods[n] = &hubPod{want: map[string]bool{}, changed: make(chan struct{})}
	}
	go h.run(ctx, l.resourceVersion)
	return h
}

// stop ends the watch and waits for it.
func (h *podHub) stop() {
	h.cancel()
	<-h.done
}

// hubRetries bounds the attempts to (re)establish the watch in a row
// before the hub gives up and its waiters watch their own pods.
const hubRetries = 3

func (h *podHub) run(ctx context.Context, rv string) {
	defer close(h.done)
	defer h.fail()
	failures := 0
	for ctx.Err() == nil {
		w, err := h.client.WatchPods(ctx, h.ns, metav1.ListOptions{LabelSelector: h.sel, ResourceVersion: rv})
		if err != nil {
			if failures++; failures >= hubRetries {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(failures) * 100 * time.Millisecond):
			}
			continue
		}
		from := rv
		var relist bool
		rv, relist = h.drain(ctx, w, rv)
		w.Stop()
		if rv == from && !relist && ctx.Err() == nil {
			// Closed without an event: count it, lest a server that
			// ends every watch at once make this loop spin.
			if failures++; failures >= hubRetries {
				return
			}
			continue
		}
		if relist {
			l, err := h.client.ListPods(ctx, h.ns, h.sel)
			if err != nil {
				if failures++; failures >= hubRetries {
					return
				}
				continue
			}
			present := map[string]bool{}
			for i := range l.Items {
				present[l.Items[i].Name] = true
				h.update(&l.Items[i])
			}
			h.mu.Lock()
			for n := range h.pods {
				if !present[n] {
					h.lose(n)
				}
			}
			h.mu.Unlock()
			rv = l.ResourceVersion
		}
		failures = 0
	}
}

// drain applies events until the watch ends; relist says it ended on an
// error event (too old a resource version and the like).
func (h *podHub) drain(ctx context.Context, w watch.Interface, rv string) (string, bool) {
	for {
		select {
		case <-ctx.Done():
			return rv, false
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, false
			}
			p, isPod := ev.Object.(*corev1.Pod)
			switch {
			case ev.Type == watch.Error:
				return rv, true
			case !isPod:
				continue
			case ev.Type == watch.Deleted:
				h.mu.Lock()
				h.lose(p.Name)
				h.mu.Unlock()
			default:
				h.update(p)
			}
			rv = p.ResourceVersion
		}
	}
}

// update records p if it is one of the hub's pods.
func (h *podHub) update(p *corev1.Pod) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hp := h.pods[p.Name]
	if hp == nil || hp.lost {
		return
	}
	hp.p = trimPod(p, hp.want)
	close(hp.changed)
	hp.changed = make(chan struct{})
}

// lose marks pod name lost and wakes its waiter; h.mu is held.
func (h *podHub) lose(name string) {
	if hp := h.pods[name]; hp != nil && !hp.lost {
		hp.lost = true
		close(hp.changed)
	}
}

// fail marks the hub down and wakes every waiter.
func (h *podHub) fail() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = true
	for _, hp := range h.pods {
		if !hp.lost {
			close(hp.changed)
			hp.changed = make(chan struct{})
		}
	}
}

// expect says a session will wait for debug container name of pod: the hub
// keeps its spec and status from then on. Call it before the patch that
// adds the container, lest an event come between.
func (h *podHub) expect(pod, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hp := h.pods[pod]; hp != nil {
		hp.want[name] = true
	}
}

// has says whether the hub watches pod name.
func (h *podHub) has(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pods[name] != nil
}

// wait calls check on each new state of p's pod until it says done or
// fails. It returns errHubDown, with the last pod, once the hub is down or
// the pod left its watch: the caller watches the pod itself from there.
func (h *podHub) wait(ctx context.Context, p *corev1.Pod, check func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	var seen *corev1.Pod
	for {
		h.mu.Lock()
		hp := h.pods[p.Name]
		q, lost, down, changed := hp.p, hp.lost, h.down, hp.changed
		h.mu.Unlock()
		switch {
		case lost || down:
			if seen != nil {
				p = seen
			}
			return p, errHubDown
		case q != nil && q != seen:
			seen = q
			if done, err := check(q); done || err != nil {
				return q, err
			}
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-changed:
		}
	}
}

// trimPod keeps what a session reads of p: its identity, phase, and the
// ephemeral containers named in want, with their statuses. A pod debugged
// often holds dozens of ephemeral containers, each decoded in every event.
func trimPod(p *corev1.Pod, want map[string]bool) *corev1.Pod {
	q := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID,
			ResourceVersion: p.ResourceVersion},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName},
		Status: corev1.PodStatus{Phase: p.Status.Phase},
	}
	for _, ec := range p.Spec.EphemeralContainers {
		if want[ec.Name] {
			q.Spec.EphemeralContainers = append(q.Spec.EphemeralContainers, ec)
		}
	}
	for _, s := range p.Status.EphemeralContainerStatuses {
		if want[s.Name] {
			q.Status.EphemeralContainerStatuses = append(q.Status.EphemeralContainerStatuses, s)
		}
	}
	return q
}
