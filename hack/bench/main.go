// Command bench measures ephem's warm time-to-command against its floor
// (nsenter) and Docker, and a large image against a small one, and prints a
// markdown report (docs/benchmarks.md holds the last one).
//
//	go run ./hack/bench [-runs 15] [-large-mb 500] [-ephem BIN] [-ephem-base BIN] [-docker=false]
//	go run ./hack/bench -mode cp [-runs 5] [-cp-mb 1024]   (cp throughput, cp.go)
//	go run ./hack/bench -mode resolve [-runs 200]         (target.Resolve in-process, resolve.go)
//	go run ./hack/bench -mode coldpull [-runs 5]          (cold pull against docker pull + run, coldpull.go)
//
// Every case runs `true` in a target's namespaces; the cases are interleaved
// round by round (in a rotating order) so that machine noise hits them
// alike, after one untimed warm-up run each:
//
//   - nsenter: nsenter -t PID -n -i -u -p true, the floor;
//   - go-empty: an empty Go program, the floor of any Go binary's start;
//   - go-floor: a Go program that links cobra, net/http and
//     go-containerregistry and does nothing (hack/bench/floor), the floor
//     of ephem version;
//   - ephem-version: ephem version, the Go binary's own start-up (no
//     target, no container);
//   - ephem: ephem debug pid:PID --image BUSYBOX -- true (image cached);
//   - ephem-large: the same with a busybox plus LARGE-MB MiB of layers;
//   - ephem-podman, ephem-cri, ephem-docker, ephem-containerd: the same by
//     each runtime's reference, through its API, and (-noapi) by full ID
//     with its socket absent, found from /proc (podman.go, cri.go,
//     runtimes.go); a runtime that is not installed has no case;
//   - docker: docker run --rm --network container:X --pid container:X
//     busybox true, on the test daemon of hack/dockerd.sh.
//
// The target for nsenter and ephem is `sleep infinity` in its own pid, net,
// uts, ipc and mount namespaces; Docker's is a container started with
// --network none. Images come from a registry on 127.0.0.1 (Debian's
// docker-registry) and are cached by the warm-up; ephem uses a cache
// directory of its own, removed at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are bench's flags.
type options struct {
	runs    int
	largeMB int
	ephem   string
	base    string
	docker  bool
	workDir string
	mode    string // "debug", or "cp" (cp.go)
	cpMB    int
	coldMB  int // -mode coldpull (coldpull.go)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.runs, "runs", 15, "timed runs of each case (at least 10)")
	fs.IntVar(&o.largeMB, "large-mb", 500, "size of the large image in MiB (0: skip the large image)")
	fs.StringVar(&o.ephem, "ephem", "", "ephem binary (default: the release's ephem, built by hack/build.sh)")
	fs.StringVar(&o.base, "ephem-base", "", "a second ephem binary (say, of an earlier commit) timed as the case ephem-base, interleaved with the others")
	fs.BoolVar(&o.docker, "docker", true, "also measure docker run (starts hack/dockerd.sh's daemon)")
	fs.StringVar(&o.workDir, "work", "/var/tmp", "directory for the registry and ephem's cache (needs overlayfs support)")
	fs.StringVar(&o.mode, "mode", "debug", "what to measure: debug (time-to-command), cp (cp throughput, cp.go), resolve (in-process target resolution, resolve.go) or coldpull (first pull against docker, coldpull.go)")
	fs.IntVar(&o.cpMB, "cp-mb", 1024, "-mode cp: size of the copied file in MiB")
	fs.IntVar(&o.coldMB, "coldpull-mb", 300, "-mode coldpull: size of the large image in MiB")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if minRuns := map[string]int{"debug": 10, "cp": 5, "resolve": 3, "coldpull": 5}[o.mode]; minRuns == 0 {
		return o, fmt.Errorf("-mode %q: debug, cp, resolve or coldpull", o.mode)
	} else if o.runs < minRuns {
		return o, fmt.Errorf("-runs %d: at least %d runs are needed for a p90", o.runs, minRuns)
	}
	if o.cpMB < 1 {
		return o, fmt.Errorf("-cp-mb %d: at least 1", o.cpMB)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (ephem, nsenter and dockerd do): run go run ./hack/bench as root")
	}
	if o.mode == "cp" {
		return runCp(ctx, o, stdout, stderr)
	}
	if o.mode == "coldpull" {
		return runColdPull(ctx, o, stdout, stderr) // coldpull.go
	}
	if o.mode == "resolve" {
		return runResolve(ctx, o, stdout, stderr) // resolve.go
	}
	env, cleanup, err := setUp(ctx, o, stderr)
	defer cleanup()
	if err != nil {
		return err
	}
	cases := env.cases(o)
	for _, c := range cases {
		logf(stderr, "warm-up: %s", c.name)
		if _, err := c.run(ctx); err != nil {
			return fmt.Errorf("warm-up of %s: %w", c.name, err)
		}
	}
	samples, err := measure(ctx, cases, o.runs, stderr)
	if err != nil {
		return err
	}
	rss, err := measureRSS(ctx, cases, rssRuns)
	if err != nil {
		return err
	}
	return writeReport(stdout, report{opts: o, env: env, samples: samples, rss: rss})
}

// rssRuns is how many times each case runs for its peak RSS.
const rssRuns = 5

// measureRSS runs every case runs times, after the timed rounds, through
// GNU time (os/exec's child shares this process's memory until exec, so
// its own ru_maxrss would count ours), and returns each case's peak RSS
// in KiB, one per run.
func measureRSS(ctx context.Context, cases []benchCase, runs int) (map[string][]int64, error) {
	out := map[string][]int64{}
	f, err := os.CreateTemp("", "ephem-bench-rss")
	if err != nil {
		return nil, err
	}
	_ = f.Close()
	defer func() { _ = os.Remove(f.Name()) }()
	for range runs {
		for _, c := range cases {
			argv := append([]string{"-f", "%M", "-o", f.Name()}, c.argv...)
			if err := command(ctx, c.env, "/usr/bin/time", argv...); err != nil {
				return nil, fmt.Errorf("peak RSS of %s: %w", c.name, err)
			}
			b, err := os.ReadFile(f.Name())
			if err != nil {
				return nil, err
			}
			kib, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("peak RSS of %s: /usr/bin/time printed %q", c.name, b)
			}
			out[c.name] = append(out[c.name], kib)
		}
	}
	return out, nil
}

// benchEnv is everything the cases need.
type benchEnv struct {
	ephem      string
	goEmpty    string // an empty Go program: the floor of any Go start
	goFloor    string // hack/bench/floor: the floor of a Go command line that pulls images
	ephemCache string
	pid        int    // the namespaced target of nsenter and ephem
	small      string // busybox reference
	large      string // large image reference, "" to skip
	dockerHost string // "" to skip docker
	dockerCtr  string // docker's target container
	dockerImg  string // busybox tag in docker
	// extra are other runtimes' cases (podman.go, cri.go, runtimes.go).
	extra []benchCase
}

func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "bench: "+format+"\n", args...)
}

// setUp builds and starts what the cases need. cleanup undoes what was
// done, even when err is set.
func setUp(ctx context.Context, o options, stderr io.Writer) (env *benchEnv, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	env = &benchEnv{ephem: o.ephem}
	work, err := os.MkdirTemp(o.workDir, "ephem-bench-")
	if err != nil {
		return nil, cleanup, fmt.Errorf("creating a work directory: %w", err)
	}
	undo = append(undo, func() { _ = os.RemoveAll(work) })
	if env.ephem == "" {
		logf(stderr, "building ephem (hack/build.sh)")
		if env.ephem, _, err = e2eutil.BuildRelease(ctx, filepath.Join(work, "release")); err != nil {
			return nil, cleanup, err
		}
	}
	env.goEmpty = filepath.Join(work, "go-empty")
	src := filepath.Join(work, "go-empty-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, cleanup, err
	}
	for name, data := range map[string]string{"go.mod": "module empty\n", "main.go": "package main\n\nfunc main() {}\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			return nil, cleanup, err
		}
	}
	if err := command(ctx, nil, "go", "-C", src, "build", "-o", env.goEmpty, "."); err != nil {
		return nil, cleanup, fmt.Errorf("building an empty Go program: %w", err)
	}
	env.goFloor = filepath.Join(work, "go-floor")
	if err := command(ctx, nil, "go", "build", "-o", env.goFloor, "./hack/bench/floor"); err != nil {
		return nil, cleanup, fmt.Errorf("building hack/bench/floor: %w", err)
	}
	env.ephemCache = filepath.Join(work, "cache")
	// ephem may leave mounts or state in its cache; gc before removal.
	undo = append(undo, func() { _ = command(context.Background(), nil, env.ephem, "--cache-dir", env.ephemCache, "gc") })

	logf(stderr, "building images (cached in %s)", testimages.DefaultCacheDir())
	cacheDir := testimages.DefaultCacheDir()
	small, addr, stopRegistry, err := testimages.ServeBusybox(ctx, filepath.Join(work, "registry"))
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, func() { _ = stopRegistry() })
	env.small = small
	if o.largeMB > 0 {
		logf(stderr, "building and pushing the %d MiB image", o.largeMB)
		large, err := testimages.Large(ctx, cacheDir, o.largeMB)
		if err != nil {
			return nil, cleanup, err
		}
		env.large = testimages.LargeRef(addr, o.largeMB)
		if err := testimages.Push(ctx, large, env.large); err != nil {
			return nil, cleanup, err
		}
	}

	tg, err := e2eutil.StartNamespaced(ctx)
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, tg.Stop)
	env.pid = tg.PID
	logf(stderr, "target: pid %d (sleep infinity in its own namespaces)", env.pid)
	if err := env.setUpPodman(ctx, &undo, stderr); err != nil {
		return nil, cleanup, err
	}
	if err := env.setUpCRI(ctx, &undo, stderr); err != nil {
		return nil, cleanup, err
	}

	if o.docker {
		if err := env.setUpDocker(ctx, work, &undo, stderr); err != nil {
			return nil, cleanup, err
		}
	}
	if err := env.setUpRuntimes(ctx, work, &undo, stderr); err != nil { // runtimes.go
		return nil, cleanup, err
	}
	return env, cleanup, nil
}

// setUpDocker starts (or joins) the test daemon, loads busybox and starts
// docker's target container.
func (env *benchEnv) setUpDocker(ctx context.Context, work string, undo *[]func(), stderr io.Writer) error {
	logf(stderr, "starting the test Docker daemon (hack/dockerd.sh)")
	host, release, err := e2eutil.AcquireDockerd(ctx)
	if err != nil {
		return err
	}
	*undo = append(*undo, release)
	env.dockerHost = host
	env.dockerImg = "ephem/busybox:bench"
	img, err := testimages.Busybox(ctx, testimages.DefaultCacheDir())
	if err != nil {
		return err
	}
	tar := filepath.Join(work, "busybox.tar")
	if err := testimages.WriteDockerTarball(tar, env.dockerImg, img); err != nil {
		return err
	}
	dockerEnv := e2eutil.DockerEnv(host)
	if err := command(ctx, dockerEnv, e2eutil.DockerClient, "load", "-q", "-i", tar); err != nil {
		return fmt.Errorf("docker load: %w", err)
	}
	env.dockerCtr = "ephem-bench-target"
	_ = command(ctx, dockerEnv, e2eutil.DockerClient, "rm", "-f", env.dockerCtr) // a leftover of an interrupted run
	if err := command(ctx, dockerEnv, e2eutil.DockerClient, "run", "-d", "--name", env.dockerCtr,
		"--network", "none", env.dockerImg, "sleep", "1000000"); err != nil {
		return fmt.Errorf("starting docker's target: %w", err)
	}
	*undo = append(*undo, func() {
		_ = command(context.Background(), dockerEnv, e2eutil.DockerClient, "rm", "-f", env.dockerCtr)
	})
	return nil
}

// benchCase is one measured command.
type benchCase struct {
	name string
	what string // the command, for the report
	env  []string
	argv []string
}

// run runs the case once and returns its wall time from start to exit.
func (c benchCase) run(ctx context.Context) (time.Duration, error) {
	r, err := e2eutil.Run(ctx, c.env, c.argv[0], c.argv[1:]...)
	if err != nil {
		return 0, err
	}
	if r.ExitCode != 0 {
		return 0, fmt.Errorf("%s: exit %d: %s", c.name, r.ExitCode, r.Stderr)
	}
	return r.Duration, nil
}

const (
	caseNsenter      = "nsenter"
	caseEphemVersion = "ephem-version"
	caseGoEmpty      = "go-empty"
	caseGoFloor      = "go-floor"
	caseBaseVersion  = "ephem-base-version"
	caseEphem        = "ephem"
	caseEphemLarge   = "ephem-large"
	caseEphemBase    = "ephem-base"
	caseDocker       = "docker"
)

func (env *benchEnv) cases(o options) []benchCase {
	pid := strconv.Itoa(env.pid)
	ephemEnv := []string{"EPHEM_CACHE_DIR=" + env.ephemCache}
	cs := []benchCase{
		{name: caseNsenter, what: "nsenter -t PID -n -i -u -p true",
			argv: []string{"nsenter", "-t", pid, "-n", "-i", "-u", "-p", "true"}},
		{name: caseGoEmpty, what: "an empty Go program (func main() {})",
			argv: []string{env.goEmpty}},
		{name: caseGoFloor, what: "a Go program linking cobra, net/http and go-containerregistry, doing nothing (hack/bench/floor)",
			argv: []string{env.goFloor}},
		{name: caseEphemVersion, what: "ephem version",
			argv: []string{env.ephem, "version"}},
		{name: caseEphem, what: "ephem debug -q pid:PID --image busybox -- true", env: ephemEnv,
			argv: []string{env.ephem, "debug", "-q", "pid:" + pid, "--image", env.small, "--", "true"}},
	}
	if o.base != "" {
		cs = append(cs, benchCase{name: caseEphemBase, what: "the same with -ephem-base's binary", env: ephemEnv,
			argv: []string{o.base, "debug", "-q", "pid:" + pid, "--image", env.small, "--", "true"}},
			benchCase{name: caseBaseVersion, what: "-ephem-base's binary version", argv: []string{o.base, "version"}})
	}
	if env.large != "" {
		cs = append(cs, benchCase{name: caseEphemLarge,
			what: fmt.Sprintf("ephem debug -q pid:PID --image large-%dmb -- true", o.largeMB), env: ephemEnv,
			argv: []string{env.ephem, "debug", "-q", "pid:" + pid, "--image", env.large, "--", "true"}})
	}
	cs = append(cs, env.extra...)
	if env.dockerHost != "" {
		cs = append(cs, benchCase{name: caseDocker,
			what: "docker run --rm --network container:X --pid container:X busybox true",
			env:  e2eutil.DockerEnv(env.dockerHost),
			argv: []string{e2eutil.DockerClient, "run", "--rm", "--network", "container:" + env.dockerCtr,
				"--pid", "container:" + env.dockerCtr, env.dockerImg, "true"}})
	}
	return cs
}

// measure runs every case runs times, round by round, rotating the order.
func measure(ctx context.Context, cases []benchCase, runs int, stderr io.Writer) (map[string][]time.Duration, error) {
	samples := map[string][]time.Duration{}
	for i := range runs {
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			d, err := c.run(ctx)
			if err != nil {
				return nil, fmt.Errorf("run %d of %s: %w", i+1, c.name, err)
			}
			samples[c.name] = append(samples[c.name], d)
		}
		logf(stderr, "round %d/%d done", i+1, runs)
	}
	return samples, nil
}

// command runs a set-up command, returning its stderr in the error.
func command(ctx context.Context, env []string, name string, args ...string) error {
	r, err := e2eutil.Run(ctx, env, name, args...)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("%s: exit %d: %s", name, r.ExitCode, r.Stderr)
	}
	return nil
}
