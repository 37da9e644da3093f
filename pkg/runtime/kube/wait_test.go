package kube

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/session"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func testStreams() session.Streams {
	return session.Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
}

func withStatus(p *corev1.Pod, s corev1.ContainerState) *corev1.Pod {
	p = p.DeepCopy()
	p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "debugger-x", State: s}}
	return p
}

// watchingClient serves the given pod states, one per watch event.
func watchingClient(states ...*corev1.Pod) *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		w := watch.NewFake()
		go func() {
			for _, s := range states {
				w.Modify(s)
			}
		}()
		return true, w, nil
	})
	return cs
}

func TestWaitReportsReasonsAndFailsFast(t *testing.T) {
	p := testPod("web")
	cs := watchingClient(
		withStatus(p, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}),
		withStatus(p, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not found"}}),
	)
	var log bytes.Buffer
	b := NewForClient(Options{Log: &log, Timeout: 5 * time.Second}, clientset{cs}, nil, "shop")
	_, err := b.newCall().waitFor(context.Background(), p, "debugger-x", "running", running)
	if !errors.Is(err, ErrImagePull) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("error %v, want ErrImagePull with the kubelet's message", err)
	}
	if !strings.Contains(log.String(), "debugger-x: ContainerCreating") {
		t.Errorf("log %q lacks the waiting reason", log.String())
	}
}

func TestWaitRunningAndTimeout(t *testing.T) {
	p := testPod("web")
	cs := watchingClient(withStatus(p, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}))
	b := NewForClient(Options{Timeout: 5 * time.Second}, clientset{cs}, nil, "shop")
	if _, err := b.newCall().waitFor(context.Background(), p, "debugger-x", "running", running); err != nil {
		t.Fatalf("running: %v", err)
	}
	cs = watchingClient(withStatus(p, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}))
	b = NewForClient(Options{Timeout: 200 * time.Millisecond}, clientset{cs}, nil, "shop")
	start := time.Now()
	_, err := b.newCall().waitFor(context.Background(), p, "debugger-x", "running", running)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "ContainerCreating") {
		t.Fatalf("error %v, want ErrTimeout naming the last state", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("timeout took %v", time.Since(start))
	}
}

func TestDetachReader(t *testing.T) {
	detached := false
	d := &detachReader{r: strings.NewReader("ls\n\x10\x11more"), keys: []byte{0x10, 0x11}, onDetach: func() { detached = true }}
	buf := make([]byte, 64)
	n, err := d.Read(buf)
	if string(buf[:n]) != "ls\n" || err == nil || !detached {
		t.Errorf("Read = %q, %v, detached %v; want the input before the keys, EOF, detached", buf[:n], err, detached)
	}
}

func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	w := &prefixWriter{w: &out, mu: new(sync.Mutex), prefix: "[web-1] "}
	_, _ = w.Write([]byte("a\nb"))
	_, _ = w.Write([]byte("c\n"))
	_, _ = w.Write([]byte("tail"))
	w.flush()
	if got, want := out.String(), "[web-1] a\n[web-1] bc\n[web-1] tail\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
