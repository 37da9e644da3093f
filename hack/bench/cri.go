package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

const (
	caseCRIPod    = "ephem-cri"
	caseCRINoAPI  = "ephem-cri-noapi"
	criBenchNS    = "ephem-bench"
	criBenchPod   = "target"
	criBenchCtr   = "sleeper"
	criStartLimit = 15 * time.Minute // hack/crio.sh start: a cold build of CRI-O
)

// setUpCRI starts CRI-O (hack/crio.sh, built once into /var/cache/ephem/crio)
// with a pod whose container sleeps, and adds the cases that debug it by
// cri://NAMESPACE/POD/CONTAINER through CRI-O's socket, and by full ID
// with no socket (found from /proc). If CRI-O cannot start, it says why and
// adds nothing.
func (env *benchEnv) setUpCRI(ctx context.Context, undo *[]func(), stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "ephem-bench-crio-")
	if err != nil {
		return fmt.Errorf("creating CRI-O's directory: %w", err)
	}
	script := filepath.Join("hack", "crio.sh")
	*undo = append(*undo, func() { _ = command(context.Background(), nil, script, "stop", dir) })
	logf(stderr, "starting CRI-O (hack/crio.sh; the first run builds it)")
	registry, _, _ := strings.Cut(env.small, "/")
	sctx, cancel := context.WithTimeout(ctx, criStartLimit)
	defer cancel()
	r, err := e2eutil.Run(sctx, []string{"EPHEM_REGISTRY=" + registry, "EPHEM_CRIO_PAUSE_IMAGE=" + env.small}, script, "start", dir)
	if err != nil || r.ExitCode != 0 {
		logf(stderr, "CRI-O did not start: no %s cases: %v %s", caseCRIPod, err, strings.TrimSpace(r.Stderr))
		return nil
	}
	vars := map[string]string{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	endpoint, crictl := vars["CONTAINER_RUNTIME_ENDPOINT"], vars["CRICTL"]
	run := func(args ...string) (string, error) {
		res, err := e2eutil.Run(ctx, nil, crictl, append([]string{"--runtime-endpoint", endpoint, "--timeout", "2m"}, args...)...)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("crictl %s: exit %d: %s", args[0], res.ExitCode, res.Stderr)
		}
		return strings.TrimSpace(res.Stdout), err
	}
	id, err := criPod(dir, vars["CGROUP_PARENT"], env.small, run)
	if err != nil {
		return err
	}
	ephemEnv := "EPHEM_CACHE_DIR=" + env.ephemCache
	env.extra = append(env.extra,
		benchCase{name: caseCRIPod, what: "ephem debug -q cri://NS/POD/CONTAINER --image busybox -- true (CRI-O's API)",
			env:  []string{ephemEnv, "CONTAINER_RUNTIME_ENDPOINT=" + endpoint},
			argv: []string{env.ephem, "debug", "-q", "cri://" + criBenchNS + "/" + criBenchPod + "/" + criBenchCtr, "--image", env.small, "--", "true"}},
		benchCase{name: caseCRINoAPI, what: "ephem debug -q cri://FULL-ID --image busybox -- true (no socket: from /proc)",
			env:  []string{ephemEnv, "CONTAINER_RUNTIME_ENDPOINT=unix://" + filepath.Join(dir, "absent.sock")},
			argv: []string{env.ephem, "debug", "-q", "cri://" + id, "--image", env.small, "--", "true"}})
	return nil
}

// criPod starts the bench's pod and container with crictl (run) and
// returns the container's ID.
func criPod(dir, cgroupParent, image string, run func(args ...string) (string, error)) (string, error) {
	nsOpts := map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}}
	pod := map[string]any{
		"metadata":      map[string]any{"name": criBenchPod, "namespace": criBenchNS, "uid": "ephem-bench"},
		"log_directory": filepath.Join(dir, "pod-logs"),
		"linux":         map[string]any{"cgroup_parent": cgroupParent, "security_context": nsOpts["security_context"]},
	}
	ctr := map[string]any{
		"metadata": map[string]any{"name": criBenchCtr},
		"image":    map[string]any{"image": image},
		"command":  []string{"sleep", "1000000"},
		"log_path": "sleeper.log",
		"linux":    nsOpts,
	}
	podPath, ctrPath := filepath.Join(dir, "bench-pod.json"), filepath.Join(dir, "bench-ctr.json")
	for p, v := range map[string]any{podPath: pod, ctrPath: ctr} {
		b, err := json.Marshal(v)
		if err == nil {
			err = os.WriteFile(p, b, 0o600)
		}
		if err != nil {
			return "", fmt.Errorf("writing %s: %w", p, err)
		}
	}
	if _, err := run("pull", image); err != nil {
		return "", err
	}
	sb, err := run("runp", podPath)
	if err != nil {
		return "", err
	}
	id, err := run("create", sb, ctrPath, podPath)
	if err != nil {
		return "", err
	}
	_, err = run("start", id)
	return id, err
}
