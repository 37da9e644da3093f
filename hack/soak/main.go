// Command soak runs many debug sessions against one target while the host
// keeps requesting the target's HTTP server, kills ephem with SIGKILL at
// random points in some of them, and then checks that nothing is left:
// no mount, no process, no temporary directory, no session record. It
// prints a markdown table (docs/reliability.md holds the last one).
//
//	go run ./hack/soak [-sessions 1000] [-kill-every 10] [-cold-every 50] [-ephem BIN]
//
// The target is busybox httpd on 127.0.0.1:80 in its own pid, net, uts,
// ipc and mount namespaces; a goroutine in its network namespace requests
// it every 20 ms for the whole run. Every -kill-every'th session runs
// `sleep 30` and is killed after a random 0-400 ms; every -cold-every'th
// runs on an empty cache (a pull and unpack from a registry on 127.0.0.1,
// which the kill may interrupt too). The others run `true` on a warm cache;
// their wall times give the p50 and p99 time-to-command.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
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
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type options struct {
	sessions, killEvery, coldEvery int
	ephem, work                    string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.sessions, "sessions", 1000, "debug sessions to run")
	fs.IntVar(&o.killEvery, "kill-every", 10, "kill ephem with SIGKILL in every Nth session (0: never)")
	fs.IntVar(&o.coldEvery, "cold-every", 50, "run every Nth session on an empty cache (0: never)")
	fs.StringVar(&o.ephem, "ephem", "", "ephem binary (default: go build ./cmd/ephem)")
	fs.StringVar(&o.work, "work", "/var/tmp", "directory for the registry and the caches (needs overlayfs support)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.sessions < 10 || fs.NArg() > 0 {
		return o, fmt.Errorf("want -sessions >= 10 and no arguments")
	}
	return o, nil
}

// soakEnv is the target and what the sessions run with.
type soakEnv struct {
	ephem, image, work, warmCache string
	pid                           int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root, as ephem's local engine does")
	}
	env, cleanup, err := setUp(ctx, o, stderr)
	defer cleanup()
	if err != nil {
		return err
	}
	load := startLoad(ctx, env.pid)
	res, err := env.soak(ctx, o, stderr)
	res.requests = load.stop()
	if err != nil {
		return err
	}
	res.leftovers = env.leftovers(ctx)
	writeReport(stdout, o, res)
	if len(res.leftovers) > 0 || res.requests.failed > 0 || res.failed > 0 {
		return fmt.Errorf("%d failed sessions, %d failed requests, leftovers: %v", res.failed, res.requests.failed, res.leftovers)
	}
	return nil
}

func setUp(ctx context.Context, o options, stderr io.Writer) (env *soakEnv, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	work, err := os.MkdirTemp(o.work, "ephem-soak-")
	if err != nil {
		return nil, cleanup, fmt.Errorf("creating a work directory: %w", err)
	}
	undo = append(undo, func() { _ = os.RemoveAll(work) })
	env = &soakEnv{ephem: o.ephem, work: work, warmCache: filepath.Join(work, "warm")}
	if env.ephem == "" {
		// The release's ephem (hack/build.sh), as users run it.
		if env.ephem, _, err = e2eutil.BuildRelease(ctx, filepath.Join(work, "release")); err != nil {
			return nil, cleanup, err
		}
	}
	image, _, stopRegistry, err := testimages.ServeBusybox(ctx, filepath.Join(work, "registry"))
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, func() { _ = stopRegistry() })
	env.image = image
	www := filepath.Join(work, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return nil, cleanup, err
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("soak\n"), 0o644); err != nil {
		return nil, cleanup, err
	}
	tg, err := e2eutil.StartNamespaced(ctx, "/bin/busybox", "sh", "-c",
		"/bin/busybox ip link set lo up && exec /bin/busybox httpd -f -p 127.0.0.1:80 -h "+www)
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, tg.Stop)
	env.pid = tg.PID
	fmt.Fprintf(stderr, "soak: target pid %d (busybox httpd in its own namespaces), image %s\n", env.pid, env.image)
	return env, cleanup, nil
}

// result is what the soak measured.
type result struct {
	warm                 []time.Duration
	cold, killed, failed int
	elapsed              time.Duration
	requests             loadResult
	leftovers            []string
}

// soak runs the sessions.
func (env *soakEnv) soak(ctx context.Context, o options, stderr io.Writer) (result, error) {
	var res result
	start := time.Now()
	for i := 1; i <= o.sessions; i++ {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		cache, cold := env.warmCache, o.coldEvery > 0 && i%o.coldEvery == 0
		if cold {
			cache = filepath.Join(env.work, "cold-"+strconv.Itoa(i))
			res.cold++
		}
		kill := o.killEvery > 0 && i%o.killEvery == o.killEvery/2
		d, err := env.session(ctx, cache, kill)
		switch {
		case kill:
			res.killed++
		case err != nil:
			res.failed++
			fmt.Fprintf(stderr, "soak: session %d: %v\n", i, err)
		case !cold && i > 1:
			res.warm = append(res.warm, d)
		}
		if cold {
			_ = exec.Command(env.ephem, "--cache-dir", cache, "gc").Run()
			_ = os.RemoveAll(cache)
		}
		if i%100 == 0 {
			fmt.Fprintf(stderr, "soak: %d/%d sessions\n", i, o.sessions)
		}
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// session runs one ephem debug; with kill, `sleep 30` killed after a
// random delay.
func (env *soakEnv) session(ctx context.Context, cache string, kill bool) (time.Duration, error) {
	cmd := []string{"true"}
	if kill {
		cmd = []string{"sleep", "30"}
	}
	args := append([]string{"debug", "-q", "--cache-dir", cache, "pid:" + strconv.Itoa(env.pid), "--image", env.image, "--"}, cmd...)
	c := exec.CommandContext(ctx, env.ephem, args...)
	start := time.Now()
	if !kill {
		out, err := c.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("%w: %s", err, out)
		}
		return time.Since(start), nil
	}
	if err := c.Start(); err != nil {
		return 0, err
	}
	time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
	_ = c.Process.Kill()
	_ = c.Wait()
	return 0, nil
}

func writeReport(w io.Writer, o options, r result) {
	sort.Slice(r.warm, func(i, j int) bool { return r.warm[i] < r.warm[j] })
	pct := func(p float64) string {
		if len(r.warm) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f ms", float64(r.warm[int(p*float64(len(r.warm)-1))].Microseconds())/1000)
	}
	fmt.Fprintf(w, "| sessions | killed | cold | failed | sessions/s | p50 | p99 | requests ok | requests failed | leftovers |\n")
	fmt.Fprintf(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	left := "none"
	if len(r.leftovers) > 0 {
		left = fmt.Sprint(r.leftovers)
	}
	fmt.Fprintf(w, "| %d | %d | %d | %d | %.1f | %s | %s | %d | %d | %s |\n", o.sessions, r.killed, r.cold, r.failed,
		float64(o.sessions)/r.elapsed.Seconds(), pct(0.5), pct(0.99), r.requests.ok, r.requests.failed, left)
}
