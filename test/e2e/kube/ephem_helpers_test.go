//go:build e2e_kube

package kube_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/test/e2e/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ephemResult is one run of the ephem binary.
type ephemResult struct {
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

// ephem runs the ephem binary against the test cluster in namespace ns.
func ephem(t *testing.T, ns string, args ...string) ephemResult {
	t.Helper()
	return ephemEnv(t, ns, nil, args...)
}

func ephemEnv(t *testing.T, ns string, env []string, args ...string) ephemResult {
	t.Helper()
	return ephemInput(t, ns, env, "", args...)
}

// ephemInput runs ephem with stdin from input (empty: no stdin).
func ephemInput(t *testing.T, ns string, env []string, input string, args ...string) ephemResult {
	t.Helper()
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	return runEphemBin(t, e2eutil.BuildEphem(t), append([]string{"KUBECONFIG=" + cluster.Kubeconfig}, env...), input, args...)
}

// runEphemBin runs the ephem binary bin with env added to this process's
// environment and stdin from input (empty: none), within 3 minutes.
func runEphemBin(t *testing.T, bin string, env []string, input string, args ...string) ephemResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if input != "" {
		cmd.Stdin = strings.NewReader(input)
	}
	start := time.Now()
	err := cmd.Run()
	r := ephemResult{Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running ephem %v: %v", args, err)
	}
	return r
}

// mustEphem runs ephem and fails t unless it exits 0.
func mustEphem(t *testing.T, ns string, args ...string) string {
	t.Helper()
	r := ephem(t, ns, args...)
	if r.Code != 0 {
		t.Fatalf("ephem %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// ephemeralNames lists the pod's ephemeral containers.
func ephemeralNames(t *testing.T, ns, pod string) []string {
	t.Helper()
	out, stderr, err := cluster.Kubectl(context.Background(), "-n", ns, "get", "pod", pod, "-o", "jsonpath={.spec.ephemeralContainers[*].name}")
	if err != nil {
		t.Fatalf("reading pod %s: %v: %s", pod, err, stderr)
	}
	return strings.Fields(out)
}

// terminal is ephem on a pty, with the cluster's generous timeouts.
type terminal struct{ *e2eutil.Terminal }

// ephemTTY runs ephem on a new pty.
func ephemTTY(t *testing.T, ns string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(e2eutil.BuildEphem(t), append([]string{"-n", ns}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "TERM=xterm")
	return &terminal{e2eutil.StartTerminal(t, cmd)}
}

func (term *terminal) screen() string { return term.Screen() }

func (term *terminal) expect(t *testing.T, s string) { t.Helper(); term.Expect(t, s, 90*time.Second) }

func (term *terminal) send(t *testing.T, s string) { t.Helper(); term.Send(t, s) }

func (term *terminal) wait(t *testing.T) int { t.Helper(); return term.Wait(t, 90*time.Second) }

// distrolessWorkload runs t in parallel with the others and deploys the
// shell-less py-serv workload as Deployment name in a namespace of its own,
// returning a context bounded by d, the namespace and the workload.
func distrolessWorkload(t *testing.T, name string, d time.Duration) (context.Context, string, *kube.Workload) {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	ns := cluster.Namespace(t, nil)
	w, err := cluster.DeployDistroless(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, ns, w
}

// firstNode returns the name of the cluster's (single) node.
func firstNode(ctx context.Context, t *testing.T) string {
	t.Helper()
	nodes, err := cluster.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("listing nodes: %v", err)
	}
	return nodes.Items[0].Name
}
