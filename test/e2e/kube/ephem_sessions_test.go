//go:build e2e_kube

package kube_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestEphemSessions: detach from an interactive debugger, list it, attach
// to it again, reuse it, and get its exit code.
func TestEphemSessions(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "web", 5*time.Minute)
	pod := "pod/" + w.Pod.Name
	term := ephemTTY(t, ns, "debug", pod, "-it", "--image", cluster.Image("busybox"), "--", "sh")
	term.expect(t, "If you don't see a command prompt")
	term.send(t, "\r")
	term.expect(t, "# ")
	term.send(t, "\x10\x11")
	if code := term.wait(t); code != 0 {
		t.Fatalf("detach: exit %d:\n%s", code, term.screen())
	}
	term.expect(t, "reattach with: ephem attach "+pod+"/debugger-")
	name := regexp.MustCompile(`debugger-[a-z0-9]{5}`).FindString(term.screen())

	ls := mustEphem(t, ns, "ls", pod)
	if !regexp.MustCompile(name + `\s+\S+busybox:test\s+distroless\s+Running`).MatchString(ls) {
		t.Errorf("ephem ls does not show %s running:\n%s", name, ls)
	}
	// --reuse attaches to it instead of adding another.
	term = ephemTTY(t, ns, "debug", pod, "-it", "--reuse", "--image", cluster.Image("busybox"), "--", "sh")
	term.expect(t, "reusing debug container "+name)
	term.send(t, "\r")
	term.expect(t, "# ")
	term.send(t, "\x10\x11")
	term.wait(t)
	if names := ephemeralNames(t, ns, w.Pod.Name); len(names) != 1 {
		t.Errorf("--reuse added a container: %v", names)
	}
	// attach, then end the shell: its exit code is ephem's.
	term = ephemTTY(t, ns, "attach", pod+"/"+name)
	term.send(t, "\r")
	term.expect(t, "# ")
	term.send(t, "echo attached-$((2+2)); exit 4\r")
	term.expect(t, "attached-4")
	if code := term.wait(t); code != 4 {
		t.Errorf("attach: exit %d, want 4:\n%s", code, term.screen())
	}
	ls = mustEphem(t, ns, "ls", "deploy/web")
	if !regexp.MustCompile(name + `.*Terminated\s+\S+\s+4`).MatchString(ls) {
		t.Errorf("ephem ls does not show %s terminated with 4:\n%s", name, ls)
	}
	// Attaching to an ended debugger shows its exit code.
	if r := ephem(t, ns, "attach", pod+"/"+name); r.Code != 4 {
		t.Errorf("attach to an ended debugger: exit %d (%s), want 4", r.Code, r.Stderr)
	}
}

// TestEphemFanOut runs a command in all three replicas concurrently.
func TestEphemFanOut(t *testing.T) {
	ctx, ns, w := distrolessWorkload(t, "web", 5*time.Minute)
	d, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	d.Spec.Replicas = &three
	if _, err := cluster.Client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.WaitDeployment(ctx, ns, w.Name); err != nil {
		t.Fatal(err)
	}
	pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("pods: %v %v", len(pods.Items), err)
	}
	out := mustEphem(t, ns, "debug", "deploy/web", "--all-pods", "--image", cluster.Image("busybox"), "--", "sh", "-c", "hostname; wget -qO- localhost:80")
	for _, p := range pods.Items {
		if !strings.Contains(out, "["+p.Name+"] "+p.Name+"\n") || !strings.Contains(out, "["+p.Name+"] OK - GET") {
			t.Errorf("output lacks %s's prefixed lines:\n%s", p.Name, out)
		}
	}
	first := pods.Items[0].Name
	r := ephem(t, ns, "debug", "-l", "app=web", "--image", cluster.Image("busybox"), "--", "sh", "-c", "test $(hostname) != "+first+" || exit 3")
	if r.Code != 3 || !strings.Contains(r.Stderr, "1 of 3 pods failed") {
		t.Errorf("-l fan-out: exit %d %q, want 3 with one failure", r.Code, r.Stderr)
	}

	// A pod deleted during a fan-out (all of whose pods one watch follows)
	// ends its own session, not the others'; a pod relabelled out of the
	// selector (out of its Service) leaves that watch too, but runs on.
	victim, relabelled := pods.Items[1].Name, pods.Items[2].Name
	res := make(chan ephemResult, 1)
	go func() {
		res <- ephem(t, ns, "debug", "-l", "app=web", "--image", cluster.Image("busybox"), "--", "sh", "-c", "sleep 8; echo done")
	}()
	time.Sleep(3 * time.Second)
	zero := int64(0)
	if err := cluster.Client.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Patch(ctx, relabelled, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"app":"quarantine"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	r = <-res
	if r.Code != 75 || !strings.Contains(r.Stderr, "pod "+victim+": ") || !strings.Contains(r.Stderr, "was deleted") || !strings.Contains(r.Stderr, "1 of 3 pods failed") {
		t.Errorf("fan-out with %s deleted: exit %d\nstderr: %s, want 75 naming it deleted, one failure", victim, r.Code, r.Stderr)
	}
	for _, p := range pods.Items {
		if p.Name != victim && !strings.Contains(r.Stdout, "["+p.Name+"] done\n") {
			t.Errorf("fan-out with %s deleted: %s's session did not finish:\n%s", victim, p.Name, r.Stdout)
		}
	}
}
