package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runFanOut measures `ephem debug -l app=fan -- true` over pods replicas
// of one Deployment against `ephem debug pod/ONE -- true` on one of them,
// interleaved, and checks issue 10's target: the fan-out within 3x one
// pod. Each run adds an ephemeral container to every pod it reaches.
func runFanOut(ctx context.Context, b *bench, pods, runs int, stdout, stderr io.Writer) error {
	w, err := b.c.DeployNginxLike(ctx, b.ns, "fan")
	if err != nil {
		return err
	}
	d, err := b.c.Client.AppsV1().Deployments(b.ns).Get(ctx, "fan", metav1.GetOptions{})
	if err != nil {
		return err
	}
	n := int32(pods)
	d.Spec.Replicas = &n
	if _, err := b.c.Client.AppsV1().Deployments(b.ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("scaling to %d pods: %w", pods, err)
	}
	fmt.Fprintf(stderr, "benchkube: waiting for %d pods\n", pods)
	if _, err := b.c.WaitDeployment(ctx, b.ns, "fan"); err != nil {
		return err
	}
	run := func(ref string) func(context.Context) error {
		return func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, b.ephem, "debug", "-q", "-n", b.ns, ref, "--image", b.c.Image("busybox"), "--", "true")
			cmd.Env = append(os.Environ(), "KUBECONFIG="+b.c.Kubeconfig)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			return nil
		}
	}
	cases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ephem debug pod/P --image busybox -- true (one pod)", run("pod/" + w.Pod.Name)},
		{fmt.Sprintf("ephem debug -l app=fan --image busybox -- true (%d pods)", pods), run("-l=app=fan")},
	}
	samples := make([][]time.Duration, len(cases))
	for i := 0; i <= runs; i++ { // run 0 warms the image on the node and the connections
		for j := range cases {
			cs := cases[(i+j)%len(cases)]
			k := (i + j) % len(cases)
			start := time.Now()
			if err := cs.fn(ctx); err != nil {
				return fmt.Errorf("%s: %w", cs.name, err)
			}
			if i > 0 {
				samples[k] = append(samples[k], time.Since(start))
			}
		}
		fmt.Fprintf(stderr, "benchkube: round %d/%d\n", i, runs)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(stdout, "%d interleaved runs per case, %s, load %s\n", runs, time.Now().UTC().Format("2006-01-02 15:04 MST"), string(load[:14]))
	names := make([]string, len(cases))
	for j, cs := range cases {
		names[j] = cs.name
	}
	med := printTable(stdout, names, samples)
	ratio := float64(med[1]) / float64(med[0])
	verdict := "PASS"
	if ratio > 3 {
		verdict = "FAIL"
	}
	fmt.Fprintf(stdout, "\n%d pods / one pod (medians): %.2fx (target <= 3x): %s\n", pods, ratio, verdict)
	return nil
}
