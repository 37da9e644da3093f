package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

const (
	casePodman      = "ephem-podman"
	podmanBenchName = "ephem-bench-target"
)

// setUpPodman starts a rootful podman container (busybox sleeping, no
// network) and adds the case that debugs it by podman://NAME, which ephem
// resolves from podman's storage. Without podman it adds nothing.
func (env *benchEnv) setUpPodman(ctx context.Context, undo *[]func(), stderr io.Writer) error {
	if _, err := os.Stat(e2eutil.PodmanBinary); err != nil {
		logf(stderr, "podman is not installed: no %s case", casePodman)
		return nil
	}
	logf(stderr, "starting podman's target container")
	if err := command(ctx, nil, e2eutil.PodmanBinary, "pull", "-q", "--tls-verify=false", env.small); err != nil {
		return fmt.Errorf("podman pull: %w", err)
	}
	_ = command(ctx, nil, e2eutil.PodmanBinary, "rm", "-f", "-t", "0", "--ignore", podmanBenchName) // a leftover
	run := append(append([]string{"run", "-d", "--name", podmanBenchName, "--network", "none"}, e2eutil.PodmanLimits...),
		env.small, "sleep", "1000000")
	if err := command(ctx, nil, e2eutil.PodmanBinary, run...); err != nil {
		return fmt.Errorf("starting podman's target: %w", err)
	}
	*undo = append(*undo, func() {
		_ = command(context.Background(), nil, e2eutil.PodmanBinary, "rm", "-f", "-t", "0", podmanBenchName)
	})
	env.extra = append(env.extra, benchCase{name: casePodman,
		what: "ephem debug -q podman://NAME --image busybox -- true", env: []string{"EPHEM_CACHE_DIR=" + env.ephemCache},
		argv: []string{env.ephem, "debug", "-q", "podman://" + podmanBenchName, "--image", env.small, "--", "true"}})
	return nil
}
