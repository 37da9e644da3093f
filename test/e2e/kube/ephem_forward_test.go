//go:build e2e_kube

package kube_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// loopbackPod creates a running pod of two shell-less containers whose
// servers listen only on the pod's 127.0.0.1, on ports 8080 and 8081.
func loopbackPod(ctx context.Context, t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	f := false
	server := func(n, addr string) corev1.Container {
		return corev1.Container{Name: n, Image: cluster.Image("distroless"), Command: []string{"/server", "-addr", addr}}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{server("app", "127.0.0.1:8080"), server("admin", "127.0.0.1:8081")},
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  &f,
		},
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := cluster.WaitPod(ctx, ns, name, "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// forwarding is a running ephem port-forward.
type forwarding struct {
	cmd    *exec.Cmd
	locals []string // the local addresses, in the order of the ports
	lines  chan string
	done   chan error
}

var (
	forwardLine = regexp.MustCompile(`^forwarding (\S+) -> (\S+) in pod `)
	klogLine    = regexp.MustCompile(`^[EWI]\d{4} `) // "E1202 16:20:23.554804 ..."
)

// startForward starts ephem port-forward and waits for its one line per
// port.
func startForward(t *testing.T, ns string, args ...string) *forwarding {
	t.Helper()
	cmd := exec.Command(e2eutil.BuildEphem(t), append([]string{"-n", ns, "port-forward"}, args...)...)
	// The relay's helper debugger runs the test registry's busybox.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "EPHEM_IMAGE="+cluster.Image("busybox"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &forwarding{cmd: cmd, lines: make(chan string, 100), done: make(chan error, 1)}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			f.lines <- s.Text()
		}
		close(f.lines)
		f.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	want := len(args) - 1
	timeout := time.After(60 * time.Second)
	for len(f.locals) < want {
		select {
		case l, ok := <-f.lines:
			if !ok {
				t.Fatalf("ephem port-forward %v ended before listening: %v", args, <-f.done)
			}
			if m := forwardLine.FindStringSubmatch(l); m != nil {
				f.locals = append(f.locals, m[1])
			} else {
				t.Logf("stderr: %s", l)
			}
		case <-timeout:
			t.Fatalf("ephem port-forward %v: no forwarding lines after 60s (got %v)", args, f.locals)
		}
	}
	return f
}

// interrupt sends SIGINT and returns the exit code.
func (f *forwarding) interrupt(t *testing.T) int {
	t.Helper()
	if err := f.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	return f.wait(t, 15*time.Second)
}

// wait returns the exit code once ephem ends, failing after d.
func (f *forwarding) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	for {
		select {
		case l, ok := <-f.lines:
			if ok {
				t.Logf("stderr: %s", l)
				if klogLine.MatchString(l) {
					t.Errorf("client-go logged on stderr: %s", l)
				}
				continue
			}
			f.lines = nil
		case err := <-f.done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			if err != nil {
				t.Fatal(err)
			}
			return 0
		case <-time.After(d):
			t.Fatalf("ephem port-forward did not end within %s", d)
		}
	}
}

// httpGet returns the body of GET http://addr/.
func httpGet(t *testing.T, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET through %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEphemPortForwardLoopback: two forwards at once reach servers that
// listen only on the pod's 127.0.0.1 (no containerPort declared), a
// connection to a closed port prints one line and leaves the others
// working, and SIGINT ends it with 0, leaving no listener and no ephemeral
// container. UDP is refused (69). Another host (another pod's IP) is
// reached through nc in one helper debugger, reused by the next run. A
// workload reference forwards to one of its pods; deleting the pod ends
// the forward with 75.
func TestEphemPortForwardLoopback(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	loopbackPod(ctx, t, ns, "lo")

	f := startForward(t, ns, "pod/lo", ":8080", "127.0.0.1:0:8081", ":9")
	const body = "OK - GET: Request completed\n"
	for range 3 {
		for _, addr := range f.locals[:2] {
			if got := httpGet(t, addr); got != body {
				t.Errorf("GET through %s = %q, want %q", addr, got, body)
			}
		}
	}
	// Port 9 has no listener in the pod: the client sees the connection
	// end, ephem says why in one line, and the other forwards still work.
	if c, err := net.DialTimeout("tcp", f.locals[2], 5*time.Second); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, _ := c.Read(make([]byte, 1))
		c.Close()
		if n != 0 {
			t.Errorf("a connection to a closed port read data")
		}
	}
	select {
	case l := <-f.lines:
		if !strings.Contains(l, "127.0.0.1:9 in pod lo: connect: connection refused") {
			t.Errorf("the line about the closed port = %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("no line about the connection to the closed port")
	}
	if got := httpGet(t, f.locals[0]); got != body {
		t.Errorf("after a refused connection, GET = %q", got)
	}
	if code := f.interrupt(t); code != 0 {
		t.Errorf("SIGINT: exit %d, want 0", code)
	}
	for _, addr := range f.locals {
		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens after the forward ended", addr)
		}
	}
	if names := ephemeralNames(t, ns, "lo"); len(names) != 0 {
		t.Errorf("the forward added ephemeral containers %v", names)
	}

	// UDP: the API forwards TCP only.
	r := ephem(t, ns, "port-forward", "pod/lo", "5353:53/udp")
	if r.Code != 69 || !strings.Contains(r.Stderr, "forward TCP only") {
		t.Errorf("udp: exit %d %q, want 69 saying TCP only", r.Code, r.Stderr)
	}

	// Another host, as the pod sees it: through nc in a helper debugger
	// (added once, reused), one line per connection that fails.
	w, err := cluster.DeployDistroless(ctx, ns, "py-serv")
	if err != nil {
		t.Fatal(err)
	}
	lo, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, "lo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		f = startForward(t, ns, "pod/lo", "0:"+w.Pod.Status.PodIP+":80", "0:"+lo.Status.PodIP+":8080")
		if got := httpGet(t, f.locals[0]); got != body {
			t.Errorf("relay to %s:80: GET = %q", w.Pod.Status.PodIP, got)
		}
		if c, err := net.DialTimeout("tcp", f.locals[1], 5*time.Second); err == nil {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
		select {
		case l := <-f.lines:
			if !strings.Contains(l, "nc: can't connect to remote host ("+lo.Status.PodIP+"): Connection refused") {
				t.Errorf("the line about the refused relay = %q", l)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("no line about the refused relayed connection")
		}
		if code := f.interrupt(t); code != 0 {
			t.Errorf("relay run %d: SIGINT: exit %d, want 0", run, code)
		}
		if names := ephemeralNames(t, ns, "lo"); len(names) != 1 {
			t.Errorf("relay run %d: ephemeral containers %v, want the one helper", run, names)
		}
	}

	// No nc is left running in the helper.
	if names := ephemeralNames(t, ns, "lo"); len(names) == 1 {
		ps, stderr, err := cluster.Kubectl(ctx, "-n", ns, "exec", "lo", "-c", names[0], "--", "ps", "-o", "args")
		if err != nil || strings.Contains(ps, "nc ") {
			t.Errorf("processes in the helper after the relays ended: %v %s\n%s", err, stderr, ps)
		}
	}

	// A workload: one of its pods.
	f = startForward(t, ns, "deployment/py-serv", ":80")
	if got := httpGet(t, f.locals[0]); got != body {
		t.Errorf("deployment/py-serv: GET = %q", got)
	}
	zero := int64(0)
	if err := cluster.Client.CoreV1().Pods(ns).Delete(ctx, w.Pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(t, 30*time.Second); code != 75 {
		t.Errorf("pod deleted while forwarding: exit %d, want 75", code)
	}
}
