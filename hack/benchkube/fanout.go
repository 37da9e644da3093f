package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runFanOut measures `ephem debug -l app=fan -- true` over pods replicas
// of one Deployment against `ephem debug pod/ONE -- true` on one of them,
// interleaved, and checks issue 10's target: the fan-out within 3x one
// pod. Each run adds an ephemeral container to every pod it reaches. With
// base, the same two cases run with that binary too, in the same rounds.
func runFanOut(ctx context.Context, b *bench, base string, pods, runs int, stdout, stderr io.Writer) error {
	// Both pairs enter the page cache the same way (written by a copy), so
	// that the binaries' resident pages compare.
	ephem, err := stagePair(b.ephem)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(ephem))
	if base != "" {
		if base, err = stagePair(base); err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(base))
	}
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
	// Peak RSS per run, from /usr/bin/time, which forks: a child that Go
	// starts shares this process's memory until it executes, and the
	// kernel counts that in its peak. ephem hands a Kubernetes target over
	// to kubectl-ephem by exec, and the higher of the two images' peaks is
	// kept.
	rssFile, err := os.CreateTemp("", "benchkube-rss")
	if err != nil {
		return err
	}
	_ = rssFile.Close()
	defer func() { _ = os.Remove(rssFile.Name()) }()
	rss := make([][]float64, 4)
	anon := make([][]float64, 4)
	run := func(k int, bin, ref string) func(context.Context) error {
		return func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, "/usr/bin/time", "-f", "%M", "-o", rssFile.Name(),
				bin, "debug", "-q", "-n", b.ns, ref, "--image", b.c.Image("busybox"), "--", "true")
			cmd.Env = append(os.Environ(), "KUBECONFIG="+b.c.Kubeconfig)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				return err
			}
			done := make(chan struct{})
			peak := anonPeak(cmd.Process.Pid, done)
			err := cmd.Wait()
			close(done)
			anon[k] = append(anon[k], <-peak)
			if err != nil {
				return fmt.Errorf("%w: %s", err, out.Bytes())
			}
			kb, err := os.ReadFile(rssFile.Name())
			if err != nil {
				return err
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(string(kb)), 64)
			if err != nil {
				return fmt.Errorf("peak RSS: /usr/bin/time wrote %q", kb)
			}
			rss[k] = append(rss[k], v*1024/1e6) // KiB to MB
			return nil
		}
	}
	type fanCase struct {
		name string
		fn   func(context.Context) error
	}
	cases := []fanCase{
		{"ephem debug pod/P --image busybox -- true (one pod)", run(0, ephem, "pod/"+w.Pod.Name)},
		{fmt.Sprintf("ephem debug -l app=fan --image busybox -- true (%d pods)", pods), run(1, ephem, "-l=app=fan")},
	}
	if base != "" {
		cases = append(cases,
			fanCase{"ephem-base, one pod", run(2, base, "pod/"+w.Pod.Name)},
			fanCase{fmt.Sprintf("ephem-base, %d pods", pods), run(3, base, "-l=app=fan")})
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
	fmt.Fprintf(stdout, "\n| case | peak RSS min | median | max | anonymous peak min | median | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for j, name := range names {
		r := rss[j][min(1, len(rss[j])):] // run 0 warms up
		a := anon[j][min(1, len(anon[j])):]
		sort.Float64s(r)
		sort.Float64s(a)
		if len(r) > 0 && len(a) > 0 {
			fmt.Fprintf(stdout, "| `%s` | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %.1f MB | %.1f MB |\n",
				name, r[0], r[len(r)/2], r[len(r)-1], a[0], a[len(a)/2], a[len(a)-1])
		}
	}
	if base != "" {
		fmt.Fprintf(stdout, "\nephem-base: %d pods / one pod (medians): %.2fx\n", pods, float64(med[3])/float64(med[2]))
	}
	ratio := float64(med[1]) / float64(med[0])
	verdict := "PASS"
	if ratio > 3 {
		verdict = "FAIL"
	}
	fmt.Fprintf(stdout, "\n%d pods / one pod (medians): %.2fx (target <= 3x): %s\n", pods, ratio, verdict)
	return nil
}

// stagePair copies bin and the kubectl-ephem beside it, if any, into a new
// directory and returns the copy of bin.
func stagePair(bin string) (string, error) {
	dir, err := os.MkdirTemp("", "benchkube-bin")
	if err != nil {
		return "", err
	}
	for _, src := range []string{bin, filepath.Join(filepath.Dir(bin), "kubectl-ephem")} {
		in, err := os.Open(src)
		if os.IsNotExist(err) && src != bin {
			continue
		} else if err != nil {
			return "", err
		}
		out, err := os.OpenFile(filepath.Join(dir, filepath.Base(src)), os.O_CREATE|os.O_WRONLY, 0o755)
		if err == nil {
			_, err = io.Copy(out, in)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		_ = in.Close()
		if err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, filepath.Base(bin)), nil
}
