//go:build e2e_kube || e2e_kube_lifecycle

package kube_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/test/e2e/kube"
)

var (
	// cluster is the running test cluster, started by TestMain when needed.
	cluster *kube.Cluster
	// lease is this process's use of the cluster.
	lease *kube.Lease
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	c, l, err := kube.Use(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e_kube: starting the test cluster:", err)
		return 1
	}
	cluster, lease = c, l
	// Under e2eutil.RunTests the ephem binary is built once for all tests.
	code := e2eutil.RunTests(m)
	if err := lease.Release(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e_kube: releasing the test cluster:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
