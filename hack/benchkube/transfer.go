package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/test/e2e/kube"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The "transfer" mode (-mode transfer) measures moving 200 MB:
//   - through ephem port-forward vs kubectl port-forward to the same pod
//     (a busybox httpd on the pod's 127.0.0.1 serving the file, each
//     forward started once, then one GET of the whole file per run);
//   - out of the pod: ephem cp pod/P:/www/big DIR vs
//     kubectl exec P -- tar cf - /www/big | tar xf - -C DIR.
//
// Runs of the two tools alternate; it prints min, median and max per case
// and the throughput of the medians.

// bulkSize is the file moved: 200 MB.
const bulkSize = 200 << 20

// bulkPod is a busybox pod that writes bulkSize random bytes to /www/big,
// then serves /www on 127.0.0.1:8080 only; it is Ready once the file is
// whole.
func bulkPod(ns string, c *kube.Cluster) *corev1.Pod {
	f := false
	script := fmt.Sprintf("mkdir -p /www && head -c %d /dev/urandom >/www/big && touch /ready && exec httpd -f -p 127.0.0.1:8080 -h /www", bulkSize)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bulk", Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "web", Image: c.Image("busybox"), Command: []string{"sh", "-c", script},
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 1,
					ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/ready"}}}},
			}},
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  &f,
		},
	}
}

type sample struct {
	name   string
	runs   []time.Duration
	failed int // runs that failed (not timed): a truncated tar stream, say
}

func runTransfer(ctx context.Context, b *bench, runs int, stdout, stderr io.Writer) error {
	if _, err := b.c.Client.CoreV1().Pods(b.ns).Create(ctx, bulkPod(b.ns, b.c), metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.c.WaitPod(ctx, b.ns, "bulk", "ready", podReady); err != nil {
		return err
	}
	ephemEnv := append(os.Environ(), "KUBECONFIG="+b.c.Kubeconfig, "EPHEM_IMAGE="+b.c.Image("busybox"))
	ef, err := startPortForward(ctx, ephemEnv, regexp.MustCompile(`^forwarding (\S+) -> `), b.ephem, "-n", b.ns, "port-forward", "pod/bulk", ":8080")
	if err != nil {
		return fmt.Errorf("ephem port-forward: %w", err)
	}
	defer ef.stop()
	kf, err := startPortForward(ctx, os.Environ(), regexp.MustCompile(`^Forwarding from (127\.0\.0\.1:\d+) -> `),
		b.c.KubectlPath, "--kubeconfig", b.c.Kubeconfig, "-n", b.ns, "port-forward", "pod/bulk", ":8080")
	if err != nil {
		return fmt.Errorf("kubectl port-forward: %w", err)
	}
	defer kf.stop()
	dir, err := os.MkdirTemp("", "benchkube-cp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	cases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"GET 200 MB through `ephem port-forward pod/bulk :8080`", func(ctx context.Context) error { return get(ctx, ef.addr) }},
		{"GET 200 MB through `kubectl port-forward pod/bulk :8080`", func(ctx context.Context) error { return get(ctx, kf.addr) }},
		{"`ephem cp pod/bulk:/www/big DIR`", func(ctx context.Context) error {
			return b.runCopy(ctx, ephemEnv, dir, fmt.Sprintf("%q -n %s cp pod/bulk:/www/big %q", b.ephem, b.ns, dir))
		}},
		{"`kubectl exec bulk -- tar cf - /www/big \\| tar xf - -C DIR`", func(ctx context.Context) error {
			return b.runCopy(ctx, os.Environ(), dir, fmt.Sprintf("%q --kubeconfig %q -n %s exec bulk -- tar cf - /www/big 2>/dev/null | tar xf - -C %q",
				b.c.KubectlPath, b.c.Kubeconfig, b.ns, dir))
		}},
	}
	samples := make([]sample, len(cases))
	for i := 0; i <= runs; i++ { // run 0 warms the connections and the helper debugger
		for j, cs := range cases {
			samples[j].name = cs.name
			start := time.Now()
			err := cs.fn(ctx)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				// Counted and shown: one failure is a result, not the end.
				fmt.Fprintf(stderr, "benchkube: %s: %v\n", cs.name, err)
				samples[j].failed++
				if samples[j].failed > runs {
					return fmt.Errorf("%s: %w", cs.name, err)
				}
			case i > 0:
				samples[j].runs = append(samples[j].runs, time.Since(start))
			}
		}
		fmt.Fprintf(stderr, "benchkube: round %d/%d\n", i, runs)
	}
	fmt.Fprintf(stdout, "| case (200 MiB) | min | median | max | MiB/s (median) | failed runs |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range samples {
		r := s.runs
		if len(r) == 0 {
			fmt.Fprintf(stdout, "| %s | - | - | - | - | %d |\n", s.name, s.failed)
			continue
		}
		sort.Slice(r, func(a, b int) bool { return r[a] < r[b] })
		med := r[len(r)/2]
		fmt.Fprintf(stdout, "| %s | %s | %s | %s | %.0f | %d |\n", s.name, ms(r[0]), ms(med), ms(r[len(r)-1]), float64(bulkSize>>20)/med.Seconds(), s.failed)
	}
	fmt.Fprintf(stdout, "\n%d runs each, interleaved, after one warm-up round\n", runs)
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// get fetches http://addr/big whole, checking its size.
func get(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/big", nil)
	if err != nil {
		return err
	}
	// A new connection each time, as a new client would make.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != bulkSize {
		return fmt.Errorf("GET %s: %s, %d bytes, want %d", addr, resp.Status, n, bulkSize)
	}
	return nil
}

// runCopy runs script with sh, then checks and removes DIR/big.
func (b *bench) runCopy(ctx context.Context, env []string, dir, script string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	// ephem cp names the copy after the source; tar keeps its full path.
	for _, p := range []string{filepath.Join(dir, "big"), filepath.Join(dir, "www", "big")} {
		if st, err := os.Stat(p); err == nil {
			if st.Size() != bulkSize {
				return fmt.Errorf("%s: %d bytes, want %d", p, st.Size(), bulkSize)
			}
			return os.RemoveAll(p)
		}
	}
	return fmt.Errorf("no copy in %s", dir)
}

// forward is a running port-forward command and its local address.
type forward struct {
	cmd  *exec.Cmd
	addr string
}

// startPortForward starts a port-forward command and waits for the line
// (on stdout or stderr) that re gives the local address from.
func startPortForward(ctx context.Context, env []string, re *regexp.Regexp, argv ...string) (*forward, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			if m := re.FindStringSubmatch(s.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	f := &forward{cmd: cmd}
	select {
	case f.addr = <-found:
		return f, nil
	case <-time.After(60 * time.Second):
		f.stop()
		return nil, fmt.Errorf("%v: no forwarding line after 60s", argv)
	}
}

// stop interrupts the command as Ctrl-C would and waits for it.
func (f *forward) stop() {
	_ = f.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		<-done
	}
}
