//go:build e2e_kube

package kube_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// completeValues runs "ephem __complete args..." against the test cluster
// and returns the candidate lines ("VALUE\tDESCRIPTION").
func completeValues(t *testing.T, args ...string) ([]string, time.Duration) {
	t.Helper()
	r := ephem(t, "", append([]string{"__complete"}, args...)...)
	if r.Code != 0 || strings.Contains(r.Stderr, "ephem:") {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, r.Code, r.Stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	return lines[:len(lines)-1], r.Took // the last line is the directive
}

func hasCandidate(lines []string, v string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return l == v || strings.HasPrefix(l, v+"\t") })
}

// TestEphemCompletion completes a real pod's and deployment's names, the
// node and the namespace through __complete with KUBECONFIG set, and
// parses ls -o json.
func TestEphemCompletion(t *testing.T) {
	ctx, ns, w := distrolessWorkload(t, "web", 3*time.Minute)
	got, took := completeValues(t, "debug", "-n", ns, "pod/")
	if !hasCandidate(got, "pod/"+w.Pod.Name) {
		t.Errorf("debug -n %s pod/: want pod/%s among %q", ns, w.Pod.Name, got)
	}
	t.Logf("ephem __complete debug -n NS pod/: %v", took)
	got, _ = completeValues(t, "cp", "-n", ns, "pod/"+w.Pod.Name[:4])
	if !hasCandidate(got, "pod/"+w.Pod.Name+":") {
		t.Errorf("cp: want pod/%s: among %q", w.Pod.Name, got)
	}
	got, _ = completeValues(t, "ns", "-n", ns, "deployment/w")
	if !hasCandidate(got, "deployment/web") {
		t.Errorf("ns deployment/w: want deployment/web among %q", got)
	}
	got, _ = completeValues(t, "debug", "")
	for _, p := range []string{"pod/", "deployment/", "node/", "docker://", "pid:"} {
		if !hasCandidate(got, p) {
			t.Errorf("debug '': want the prefix %s among %q", p, got)
		}
	}
	node := firstNode(ctx, t)
	if got, _ = completeValues(t, "debug", "node/"); !hasCandidate(got, "node/"+node) {
		t.Errorf("debug node/: want node/%s among %q", node, got)
	}
	if got, _ = completeValues(t, "debug", "pod/x", "-n", ns[:len(ns)-1]); !hasCandidate(got, ns) {
		t.Errorf("-n %s: want namespace %s among %q", ns[:len(ns)-1], ns, got)
	}

	out := mustEphem(t, ns, "ls", "--kube", "-o", "json")
	var sessions []map[string]any
	if err := json.Unmarshal([]byte(out), &sessions); err != nil {
		t.Errorf("ls --kube -o json: %v\n%s", err, out)
	}
}
