//go:build e2e_kube

package kube_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/test/e2e/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEphemCopy debugs copies of the distroless py-serv pod (--copy-to):
// the debugger sees the server through the shared PID namespace and
// localhost, the copy drops labels and probes and stays behind, exit codes
// come back, a taken name is refused, --set-image swaps an image and
// --replace deletes the original.
func TestEphemCopy(t *testing.T) {
	ctx, ns, w := distrolessWorkload(t, "py-serv", 4*time.Minute)
	busybox := cluster.Image("busybox")
	pods := cluster.Client.CoreV1().Pods(ns)
	pod := "pod/" + w.Pod.Name

	r := ephem(t, ns, "debug", pod, "--copy-to", "py-serv-copy", "--image", busybox, "--share-processes",
		"--", "sh", "-c", "wget -qO- localhost:80; echo; ps")
	if r.Code != 0 {
		t.Fatalf("copy: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, kube.Reply) || !strings.Contains(r.Stdout, "/server") {
		t.Errorf("the debugger of the copy does not see the server's reply and process:\n%s", r.Stdout)
	}
	if want := "kubectl delete pod py-serv-copy -n " + ns; !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, r.Stderr)
	}
	cp, err := pods.Get(ctx, "py-serv-copy", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the copy is gone: %v", err)
	}
	if len(cp.Labels) != 0 || cp.Spec.ShareProcessNamespace == nil || !*cp.Spec.ShareProcessNamespace ||
		len(cp.Spec.Containers) != 2 || cp.Spec.Containers[0].ReadinessProbe != nil ||
		!strings.HasPrefix(cp.Spec.Containers[1].Name, "debugger-") || cp.Spec.Containers[1].Image != busybox {
		t.Errorf("copy: labels %v, shareProcessNamespace %v, containers %+v", cp.Labels, cp.Spec.ShareProcessNamespace, cp.Spec.Containers)
	}
	if _, err := pods.Get(ctx, w.Pod.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("without --replace the original must stay: %v", err)
	}

	if r := ephem(t, ns, "debug", pod, "--copy-to", "py-serv-exit", "--image", busybox, "--", "sh", "-c", "exit 3"); r.Code != 3 {
		t.Errorf("exit 3 in a copy: got %d\nstderr: %s", r.Code, r.Stderr)
	}

	r = ephem(t, ns, "debug", pod, "--copy-to", "py-serv-copy", "--image", busybox, "--", "true")
	if r.Code != 64 || !strings.Contains(r.Stderr, "already exists") {
		t.Errorf("a taken copy name: exit %d, want 64 saying it exists\nstderr: %s", r.Code, r.Stderr)
	}

	mustEphem(t, ns, "debug", pod, "--copy-to", "py-serv-img", "--set-image", w.Container+"="+busybox, "--image", busybox, "--", "true")
	img, err := pods.Get(ctx, "py-serv-img", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Spec.Containers[0]; got.Name != w.Container || got.Image != busybox {
		t.Errorf("--set-image %s=busybox: container %s has image %s", w.Container, got.Name, got.Image)
	}

	mustEphem(t, ns, "debug", pod, "--copy-to", "py-serv-replaced", "--replace", "--image", busybox, "--", "wget", "-qO-", "localhost:80")
	err = kube.Poll(ctx, "the original pod to be deleted", func(ctx context.Context) (bool, string, error) {
		_, err := pods.Get(ctx, w.Pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
	if err != nil {
		t.Errorf("--replace: %v", err)
	}
	if _, err := pods.Get(ctx, "py-serv-replaced", metav1.GetOptions{}); err != nil {
		t.Errorf("--replace: the copy is missing: %v", err)
	}
}

// TestEphemCopyTTY runs an interactive shell in a copy: the copy restarts
// its containers always, so the shell's exit must still come back as its
// code, without the session shown twice.
func TestEphemCopyTTY(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "py-serv", 4*time.Minute)
	term := ephemTTY(t, ns, "debug", "pod/"+w.Pod.Name, "--copy-to", "py-serv-tty", "-it", "--image", cluster.Image("busybox"), "--", "sh")
	term.expect(t, "If you don't see a command prompt")
	term.send(t, "\r")
	term.expect(t, "# ")
	term.send(t, "wget -qO- localhost:80; echo; echo tty-$((6*7))\r")
	term.expect(t, "tty-42")
	term.send(t, "exit 5\r")
	if code := term.wait(t); code != 5 {
		t.Errorf("exit %d, want the shell's 5:\n%s", code, term.screen())
	}
	if s := term.screen(); !strings.Contains(s, kube.Reply) || strings.Count(s, "tty-42") > 1 {
		t.Errorf("want the server's reply, and the session once:\n%s", s)
	}
}
