// Command benchkube measures ephem's Kubernetes backend against kubectl on
// the project's test cluster (hack/cluster/up.sh), side by side in one run:
// the time from starting the command to the debug command's exit for
// "-- true", ephem debug vs kubectl debug followed by waiting for the
// ephemeral container to terminate, with kubectl exec -- true as the floor.
// It prints a markdown table of min, median and p90 per case and the ratio
// the issue sets a target for (ephem <= 0.8x kubectl debug).
//
//	go run ./hack/benchkube -runs 10
//
// With -mode shell it measures the time to a working shell, ephem debug -it
// vs kubectl debug -it under a pseudo-terminal (target <= 0.5x); with -mode
// output the time to the first byte of output and to the end, ephem debug
// -- CMD vs kubectl debug -- CMD then kubectl logs -f (target <= 0.6x); both
// in interleaved pairs, who goes first alternating (prompt.go). -ephem BIN
// measures a given binary instead of building ./cmd/ephem. Both modes then
// split each session at the container runtime (nodephases.go, from the
// cluster's containerd log): the part before the runtime is asked to create
// the container, the runtime's create and start, and the part after it.
//
//	go run ./hack/benchkube -mode shell -runs 7
//
// With -mode transfer it measures moving 200 MB instead (transfer.go):
// ephem port-forward vs kubectl port-forward, and ephem cp vs kubectl exec
// tar.
//
//	go run ./hack/benchkube -mode transfer -runs 5
//
// With -mode fanout it measures ephem debug -l over -pods replicas against
// one pod (fanout.go; target <= 3x):
//
//	go run ./hack/benchkube -mode fanout -pods 30 -runs 7
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/test/e2e/kube"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchkube:", err)
		os.Exit(1)
	}
}

type bench struct {
	c        *kube.Cluster
	ephem    string
	ns       string
	pod      string // the distroless target
	ctr      string
	shellPod string // a pod with a shell, for the kubectl exec floor
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchkube", flag.ContinueOnError)
	runs := fs.Int("runs", 10, "timed runs per case (at least 10; 5 with -mode transfer)")
	mode := fs.String("mode", "debug", "debug: ephem debug vs kubectl debug; shell: time to a shell (-it); output: time to the first byte; transfer: 200 MB through port-forward and cp; fanout: -l over -pods pods vs one pod")
	pods := fs.Int("pods", 30, "-mode fanout: replicas to fan out over")
	base := fs.String("ephem-base", "", "-mode fanout: a second ephem (say, of an earlier commit, with its kubectl-ephem beside it) timed in the same rounds")
	prebuilt := fs.String("ephem", "", "the ephem binary to measure (default: the release's pair, ephem and kubectl-ephem, built from ./cmd/ephem)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *mode != "debug" && *mode != "transfer" && *mode != "shell" && *mode != "output" && *mode != "fanout":
		return fmt.Errorf("-mode %q: debug, shell, output, transfer or fanout", *mode)
	case (*mode == "shell" || *mode == "output" || *mode == "fanout") && *runs < 7:
		return fmt.Errorf("-runs %d: at least 7", *runs)
	case *mode == "transfer" && *runs < 5:
		return fmt.Errorf("-runs %d: at least 5", *runs)
	case *mode == "debug" && *runs < 10:
		return fmt.Errorf("-runs %d: at least 10", *runs)
	}
	c, err := kube.Load(kube.Dir())
	if err != nil {
		return fmt.Errorf("loading the test cluster (run hack/cluster/up.sh first): %w", err)
	}
	work, err := os.MkdirTemp("", "ephem-benchkube-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &bench{c: c, ephem: filepath.Join(work, "ephem")}
	if *prebuilt != "" {
		b.ephem = *prebuilt
	} else {
		// As released: ephem, the local engine, hands a Kubernetes
		// command line to kubectl-ephem beside it (internal/cli/dispatch.go).
		// As released (hack/build.sh): static, stripped; the peak RSS
		// counts the binary's pages.
		fmt.Fprintln(stderr, "benchkube: building ephem and kubectl-ephem (hack/build.sh)")
		if b.ephem, _, err = e2eutil.BuildRelease(ctx, work); err != nil {
			return err
		}
	}
	if b.ns, err = c.CreateNamespace(ctx, "benchkube", nil); err != nil {
		return err
	}
	defer func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), b.ns, metav1.DeleteOptions{})
	}()
	if *mode == "transfer" {
		return runTransfer(ctx, b, *runs, stdout, stderr)
	}
	if *mode == "fanout" {
		return runFanOut(ctx, b, *base, *pods, *runs, stdout, stderr)
	}
	w, err := c.DeployDistroless(ctx, b.ns, "py-serv")
	if err != nil {
		return err
	}
	b.pod, b.ctr = w.Pod.Name, w.Container
	if *mode == "shell" || *mode == "output" {
		return runPrompt(ctx, b, *mode, *runs, stdout, stderr)
	}
	shell, err := c.DeployNginxLike(ctx, b.ns, "shell")
	if err != nil {
		return err
	}
	b.shellPod = shell.Pod.Name
	cases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ephem debug pod/P --image busybox -- true", b.ephemDebug},
		{"kubectl debug P --image busybox --target C -- true, then wait for termination", b.kubectlDebug},
		{"kubectl exec P -- true (floor)", b.kubectlExec},
	}
	samples := make([][]time.Duration, len(cases))
	for i := 0; i <= *runs; i++ { // run 0 warms the image and connections
		for j, cs := range cases {
			start := time.Now()
			if err := cs.fn(ctx); err != nil {
				return fmt.Errorf("%s: %w", cs.name, err)
			}
			if i > 0 {
				samples[j] = append(samples[j], time.Since(start))
			}
		}
		fmt.Fprintf(stderr, "benchkube: round %d/%d\n", i, *runs)
	}
	names := make([]string, len(cases))
	for j, cs := range cases {
		names[j] = cs.name
	}
	med := printTable(stdout, names, samples)
	ratio := float64(med[0]) / float64(med[1])
	verdict := "PASS"
	if ratio > 0.8 {
		verdict = "FAIL"
	}
	fmt.Fprintf(stdout, "\nephem / kubectl debug (medians): %.2fx (target <= 0.8x): %s; %d runs each, interleaved\n", ratio, verdict, *runs)
	return nil
}

// printTable writes one markdown row of min, median and p90 per case
// (sorting the samples) and returns the medians.
func printTable(w io.Writer, names []string, samples [][]time.Duration) []time.Duration {
	fmt.Fprintf(w, "| case | min | median | p90 |\n| --- | ---: | ---: | ---: |\n")
	med := make([]time.Duration, len(names))
	for j, name := range names {
		s := samples[j]
		sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
		med[j] = s[len(s)/2]
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", name, ms(s[0]), ms(med[j]), ms(s[(len(s)*9+9)/10-1]))
	}
	return med
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func (b *bench) ephemDebug(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, b.ephem, "debug", "-q", "-n", b.ns, "pod/"+b.pod, "--image", b.c.Image("busybox"), "--", "true")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+b.c.Kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// kubectlDebug runs kubectl debug and waits, with a watch started first,
// until the container it added has terminated: kubectl returns as soon as
// the container is created, before "true" has run.
func (b *bench) kubectlDebug(ctx context.Context) error {
	before, err := b.c.Client.CoreV1().Pods(b.ns).Get(ctx, b.pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, e := range before.Spec.EphemeralContainers {
		known[e.Name] = true
	}
	w, err := b.c.Client.CoreV1().Pods(b.ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", b.pod).String(), ResourceVersion: before.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	cmd := exec.CommandContext(ctx, b.c.KubectlPath, "--kubeconfig", b.c.Kubeconfig, "-n", b.ns, "debug", b.pod,
		"--image", b.c.Image("busybox"), "--target", b.ctr, "--", "true")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch closed")
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			for _, s := range p.Status.EphemeralContainerStatuses {
				if !known[s.Name] && s.State.Terminated != nil {
					return nil
				}
			}
		case <-timeout:
			return fmt.Errorf("kubectl debug's container did not terminate")
		}
	}
}

func (b *bench) kubectlExec(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, b.c.KubectlPath, "--kubeconfig", b.c.Kubeconfig, "-n", b.ns, "exec", b.shellPod, "--", "true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
