package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
)

const (
	caseDockerAPI       = "ephem-docker"
	caseDockerNoAPI     = "ephem-docker-noapi"
	caseContainerdAPI   = "ephem-containerd"
	caseContainerdNoAPI = "ephem-containerd-noapi"
	containerdBenchNS   = "ephem-bench"
)

// setUpRuntimes adds the docker:// cases (when docker is measured) and the
// containerd:// ones; a socket-less case points its runtime at a socket
// that does not exist in absentDir.
func (env *benchEnv) setUpRuntimes(ctx context.Context, absentDir string, undo *[]func(), stderr io.Writer) error {
	if env.dockerHost != "" {
		if err := env.setUpDockerRefs(ctx, absentDir); err != nil {
			return err
		}
	} else {
		logf(stderr, "-docker=false: no %s cases", caseDockerAPI)
	}
	return env.setUpContainerd(ctx, absentDir, undo, stderr)
}

// setUpDockerRefs adds the cases that debug docker's target container by
// docker://NAME through the daemon's API, and by its full ID with
// DOCKER_HOST at a socket that does not exist (found from /proc).
func (env *benchEnv) setUpDockerRefs(ctx context.Context, absentDir string) error {
	r, err := e2eutil.Run(ctx, e2eutil.DockerEnv(env.dockerHost), e2eutil.DockerClient,
		"inspect", "-f", "{{.Id}}", env.dockerCtr)
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	if err != nil {
		return fmt.Errorf("docker inspect %s: %w", env.dockerCtr, err)
	}
	id := strings.TrimSpace(r.Stdout)
	ephemEnv := "EPHEM_CACHE_DIR=" + env.ephemCache
	env.extra = append(env.extra,
		benchCase{name: caseDockerAPI, what: "ephem debug -q docker://NAME --image busybox -- true (Docker's API)",
			env:  append([]string{ephemEnv}, e2eutil.DockerEnv(env.dockerHost)...),
			argv: []string{env.ephem, "debug", "-q", "docker://" + env.dockerCtr, "--image", env.small, "--", "true"}},
		benchCase{name: caseDockerNoAPI, what: "ephem debug -q docker://FULL-ID --image busybox -- true (no socket: from /proc)",
			env:  []string{ephemEnv, "DOCKER_HOST=unix://" + filepath.Join(absentDir, "absent-docker.sock")},
			argv: []string{env.ephem, "debug", "-q", "docker://" + id, "--image", env.small, "--", "true"}})
	return nil
}

// setUpContainerd starts a standalone containerd (e2eutil.StartContainerd:
// its own root, state and socket in a temporary directory) with busybox
// sleeping in a container of ctr run -d, and adds the cases that debug it
// by containerd://NAMESPACE/ID through the API and with CONTAINERD_ADDRESS
// at a socket that does not exist. Without containerd it adds nothing.
func (env *benchEnv) setUpContainerd(ctx context.Context, absentDir string, undo *[]func(), stderr io.Writer) error {
	for _, b := range []string{e2eutil.ContainerdBinary, e2eutil.CtrBinary} {
		if _, err := os.Stat(b); err != nil {
			logf(stderr, "%s is not installed: no %s cases", b, caseContainerdAPI)
			return nil
		}
	}
	logf(stderr, "starting a standalone containerd and its target container")
	tb := &benchTB{}
	*undo = append(*undo, tb.cleanup)
	img, err := testimages.Busybox(ctx, testimages.DefaultCacheDir())
	if err != nil {
		return err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("making a container ID: %w", err)
	}
	id := hex.EncodeToString(b)
	var socket string
	err = tb.do(func() {
		cd := e2eutil.StartContainerd(tb)
		image := cd.ImportImage(tb, containerdBenchNS, img, "ephem/busybox")
		cd.Run(tb, containerdBenchNS, image, id, nil, "sleep", "1000000")
		socket = cd.Socket
	})
	if err != nil {
		return fmt.Errorf("starting containerd's target: %w", err)
	}
	ephemEnv := "EPHEM_CACHE_DIR=" + env.ephemCache
	ref := "containerd://" + containerdBenchNS + "/" + id
	env.extra = append(env.extra,
		benchCase{name: caseContainerdAPI, what: "ephem debug -q containerd://NS/ID --image busybox -- true (containerd's API)",
			env:  []string{ephemEnv, "CONTAINERD_ADDRESS=" + socket},
			argv: []string{env.ephem, "debug", "-q", ref, "--image", env.small, "--", "true"}},
		benchCase{name: caseContainerdNoAPI, what: "ephem debug -q containerd://NS/FULL-ID --image busybox -- true (no socket: from /proc)",
			env:  []string{ephemEnv, "CONTAINERD_ADDRESS=" + filepath.Join(absentDir, "absent-containerd.sock")},
			argv: []string{env.ephem, "debug", "-q", ref, "--image", env.small, "--", "true"}})
	return nil
}

// benchTB lets bench reuse e2eutil's test helpers (StartContainerd and
// its methods) outside a test: Fatal panics with a benchFatal that do
// turns into an error, and cleanup runs what Cleanup registered. Only the
// methods below are implemented; the embedded nil testing.TB makes any
// other call panic, which do reports too.
type benchTB struct {
	testing.TB
	cleanups []func()
	tmp      []string
	errs     []string
}

// benchFatal is the panic value of benchTB's Fatal.
type benchFatal struct{ msg string }

func (tb *benchTB) Helper()                   {}
func (tb *benchTB) Name() string              { return "bench" }
func (tb *benchTB) Cleanup(f func())          { tb.cleanups = append(tb.cleanups, f) }
func (tb *benchTB) Logf(string, ...any)       {}
func (tb *benchTB) Fatal(args ...any)         { panic(benchFatal{fmt.Sprint(args...)}) }
func (tb *benchTB) Fatalf(f string, a ...any) { panic(benchFatal{fmt.Sprintf(f, a...)}) }
func (tb *benchTB) Skip(args ...any)          { panic(benchFatal{fmt.Sprint(args...)}) }
func (tb *benchTB) Errorf(f string, a ...any) { tb.errs = append(tb.errs, fmt.Sprintf(f, a...)) }
func (tb *benchTB) Failed() bool              { return len(tb.errs) > 0 }

// TempDir returns a new temporary directory, removed by cleanup.
func (tb *benchTB) TempDir() string {
	d, err := os.MkdirTemp("", "ephem-bench-tb-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.tmp = append(tb.tmp, d)
	return d
}

// do runs f, returning the message of a Fatal (or any panic) as an error.
func (tb *benchTB) do(f func()) (err error) {
	defer func() {
		switch p := recover().(type) {
		case nil:
		case benchFatal:
			err = errors.New(p.msg)
		default:
			err = fmt.Errorf("unexpected panic: %v", p)
		}
	}()
	f()
	return nil
}

// cleanup runs the registered cleanups, newest first, and removes the
// temporary directories; what they could not undo goes to stderr.
func (tb *benchTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		if err := tb.do(tb.cleanups[i]); err != nil {
			tb.errs = append(tb.errs, err.Error())
		}
	}
	tb.cleanups = nil
	for _, d := range tb.tmp {
		_ = os.RemoveAll(d)
	}
	tb.tmp = nil
	for _, e := range tb.errs {
		fmt.Fprintln(os.Stderr, "bench: containerd clean-up:", e)
	}
	tb.errs = nil
}
