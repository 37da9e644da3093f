//go:build e2e_kube || e2e_kube_lifecycle

package kube_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/ephem-dev/ephem/test/e2e/kube"
)

// cluster is the running test cluster, started by TestMain when needed.
var cluster *kube.Cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	c, release, err := kube.Use(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e_kube: starting the test cluster:", err)
		return 1
	}
	cluster = c
	code := m.Run()
	if err := release(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e_kube: releasing the test cluster:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
