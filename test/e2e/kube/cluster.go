package kube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ephem-dev/ephem/internal/testimages"
)

// DefaultDir is the cluster's state directory unless EPHEM_CLUSTER_DIR is set.
const DefaultDir = "/var/lib/ephem-cluster"

// Cluster is a running test cluster.
type Cluster struct {
	// Dir is the cluster's state directory.
	Dir string
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string
	// Registry is the plain-HTTP registry on 127.0.0.1 (host:port) that
	// holds the test images and that the kubelet pulls from.
	Registry string
	// KubectlPath is the kubectl matching the cluster's version.
	KubectlPath string
	// Client is a clientset for Kubeconfig.
	Client kubernetes.Interface
}

// Dir returns $EPHEM_CLUSTER_DIR, else DefaultDir.
func Dir() string {
	if d := os.Getenv("EPHEM_CLUSTER_DIR"); d != "" {
		return d
	}
	return DefaultDir
}

// ScriptsDir returns the directory of up.sh and down.sh in this source tree.
func ScriptsDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("finding hack/cluster: no caller information")
	}
	d := filepath.Join(filepath.Dir(file), "..", "..", "..", "hack", "cluster")
	if _, err := os.Stat(filepath.Join(d, "up.sh")); err != nil {
		return "", fmt.Errorf("finding hack/cluster: %w", err)
	}
	return filepath.Clean(d), nil
}

// Load reads the cluster.env that up.sh wrote in dir and connects to the
// cluster. EPHEM_KUBECONFIG, EPHEM_REGISTRY and EPHEM_KUBECTL override it.
func Load(dir string) (*Cluster, error) {
	env, err := readEnv(filepath.Join(dir, "cluster.env"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir:         dir,
		Kubeconfig:  firstSet(os.Getenv("EPHEM_KUBECONFIG"), env["KUBECONFIG"]),
		Registry:    firstSet(os.Getenv("EPHEM_REGISTRY"), env["REGISTRY"]),
		KubectlPath: firstSet(os.Getenv("EPHEM_KUBECTL"), env["EPHEM_KUBECTL"], filepath.Join(dir, "bin", "kubectl")),
	}
	if c.Kubeconfig == "" || c.Registry == "" {
		return nil, fmt.Errorf("reading %s/cluster.env: KUBECONFIG or REGISTRY missing", dir)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", c.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("creating client: %w", err)
	}
	return c, nil
}

// Healthy reports whether the API server answers and the node is Ready.
func (c *Cluster) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, listAll)
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range nodes.Items {
		if nodeReady(&n) {
			return nil
		}
	}
	return fmt.Errorf("checking nodes: none of %d is Ready", len(nodes.Items))
}

// Up runs hack/cluster/up.sh and returns the cluster it started (or found
// running), checking the KUBECONFIG and REGISTRY lines it prints last.
func Up(ctx context.Context) (*Cluster, error) {
	scripts, err := ScriptsDir()
	if err != nil {
		return nil, err
	}
	out, err := runScript(ctx, filepath.Join(scripts, "up.sh"))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], "REGISTRY=127.0.0.1:") ||
		!strings.HasPrefix(lines[len(lines)-1], "KUBECONFIG=/") {
		return nil, fmt.Errorf("running up.sh: last lines are not REGISTRY= and KUBECONFIG=: %q", lines)
	}
	c, err := Load(Dir())
	if err != nil {
		return nil, err
	}
	if got := strings.TrimPrefix(lines[len(lines)-1], "KUBECONFIG="); got != c.Kubeconfig {
		return nil, fmt.Errorf("running up.sh: printed KUBECONFIG=%s, cluster.env says %s", got, c.Kubeconfig)
	}
	return c, nil
}

// Down runs hack/cluster/down.sh, without waiting for other test processes
// using the cluster (the caller is one of them, or holds them off).
func Down(ctx context.Context) error {
	scripts, err := ScriptsDir()
	if err != nil {
		return err
	}
	_, err = runScript(ctx, filepath.Join(scripts, "down.sh"), "EPHEM_CLUSTER_FORCE=1")
	return err
}

// Ensure returns the running cluster, starting it with up.sh when it is not
// up. started reports whether Ensure started it. Test processes call Use
// instead, which also coordinates stopping the cluster.
func Ensure(ctx context.Context) (c *Cluster, started bool, err error) {
	if c, err := Load(Dir()); err == nil && c.Healthy(ctx) == nil {
		return c, false, nil
	}
	c, err = Up(ctx)
	if err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// Image returns the reference of a standard test image (pause, busybox,
// distroless, toolbox) in the cluster's registry.
func (c *Cluster) Image(name string) string { return testimages.Ref(c.Registry, name) }

// Kubectl runs the cluster's kubectl with args and returns its stdout and
// stderr; err is non-nil when it exits non-zero.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, c.KubectlPath, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), e.String(), fmt.Errorf("running kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(e.String()))
	}
	return o.String(), e.String(), nil
}

func runScript(ctx context.Context, path string, env ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append(os.Environ(), env...)
	var o bytes.Buffer
	cmd.Stdout = &o
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return o.String(), fmt.Errorf("running %s: %w", filepath.Base(path), err)
	}
	return o.String(), nil
}

func readEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading cluster settings (is the cluster up? hack/cluster/up.sh): %w", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
