package main

// The node's share of each timed session (-mode shell and output), read
// from the container runtime's own log: when containerd's CRI plugin was
// asked to create the debug container, and when its start of it returned.
// That splits a session into the part before the runtime (the tool's own
// start and requests, the API server, the kubelet's pickup), the runtime's
// create and start (the same work for either tool), and the part after
// the container runs (an attach, or the status and a log request, and the
// shell's answer), which is what a client can still change.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runtimeTimes is when the runtime was asked to create a container and
// when its start of it returned.
type runtimeTimes struct{ createAsked, started time.Time }

var (
	logTime     = regexp.MustCompile(`^time="([^"]+)"`)
	createAsked = regexp.MustCompile(`CreateContainer within sandbox .* for container &ContainerMetadata\{Name:([^,]+),Attempt:0,\}`)
	created     = regexp.MustCompile(`CreateContainer within sandbox .* for &ContainerMetadata\{Name:([^,]+),Attempt:0,\} returns container id \\"([0-9a-f]+)\\"`)
	started     = regexp.MustCompile(`StartContainer for \\"([0-9a-f]+)\\" returns successfully`)
)

// readRuntimeTimes reads containerd's log for the containers created at or
// after since, by name (names are unique within the benchmark's pod).
func readRuntimeTimes(r io.Reader, since time.Time) (map[string]runtimeTimes, error) {
	out := map[string]runtimeTimes{}
	names := map[string]string{} // container ID -> name
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := logTime.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || t.Before(since) {
			continue
		}
		if m := created.FindStringSubmatch(line); m != nil {
			names[m[2]] = m[1]
		} else if m := createAsked.FindStringSubmatch(line); m != nil {
			out[m[1]] = runtimeTimes{createAsked: t}
		} else if m := started.FindStringSubmatch(line); m != nil {
			if name, ok := names[m[1]]; ok {
				rt := out[name]
				rt.started = t
				out[name] = rt
			}
		}
	}
	return out, sc.Err()
}

// newContainers returns the pod's ephemeral containers not in seen, and
// adds them to it.
func (b *bench) newContainers(ctx context.Context, seen map[string]bool) ([]string, error) {
	p, err := b.c.Client.CoreV1().Pods(b.ns).Get(ctx, b.pod, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var fresh []string
	for _, ec := range p.Spec.EphemeralContainers {
		if !seen[ec.Name] {
			seen[ec.Name] = true
			fresh = append(fresh, ec.Name)
		}
	}
	return fresh, nil
}

// printNodePhases writes, per case, the medians of the three parts of a
// session, from the containerd log at path, and the runtime's part beside
// budget, the target's share of kubectl's median.
func printNodePhases(w io.Writer, path string, since time.Time, names []string, samples [][]timing, target float64, budget time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rt, err := readRuntimeTimes(f, since)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	fmt.Fprintf(w, "\nThe node's share (containerd's log, %s; medians over the runs it logged):\n\n", path)
	fmt.Fprintln(w, "| case | start → the runtime asked to create | the runtime's create and start | start returned → answer | runs |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	var runtimeMed []time.Duration
	for j, name := range names {
		var before, runtime, after []time.Duration
		for _, s := range samples[j] {
			t, ok := rt[s.container]
			if !ok || t.started.IsZero() {
				continue
			}
			before = append(before, t.createAsked.Sub(s.start))
			runtime = append(runtime, t.started.Sub(t.createAsked))
			after = append(after, s.start.Add(s.first).Sub(t.started))
		}
		if len(runtime) == 0 {
			fmt.Fprintf(w, "| `%s` | - | - | - | 0 |\n", name)
			continue
		}
		runtimeMed = append(runtimeMed, median(runtime))
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %d |\n", name, ms(median(before)), ms(median(runtime)), ms(median(after)), len(runtime))
	}
	if len(runtimeMed) == 2 {
		fmt.Fprintf(w, "\n%.1fx kubectl's median is %s; the runtime's create and start alone took %s (ephem's sessions) and %s (kubectl's).\n",
			target, ms(budget), ms(runtimeMed[0]), ms(runtimeMed[1]))
	}
	return nil
}

// median sorts d and returns its middle element.
func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
	return d[len(d)/2]
}
