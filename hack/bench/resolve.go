package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	ephemruntime "github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/local"
	reftarget "github.com/ephem-dev/ephem/pkg/target" // report.go has a type target
)

// -mode resolve times target.Resolve in this process, for the references
// of the debug cases (pid:, podman://, cri://, docker:// and containerd://,
// through the API and without it) against the same targets: the part of
// time-to-command that a runtime's reference adds to pid:, without the
// noise of starting a process and a container.

// resolveCase is one reference to resolve.
type resolveCase struct {
	name    string
	form    string // the reference's form, for the report
	ref     reftarget.Ref
	env     []string // KEY=VALUE set while resolving (DOCKER_HOST, ...)
	viaProc bool     // a socket-less case: must be found from /proc
}

// resolveSample is one resolution's wall and CPU time.
type resolveSample struct{ wall, cpu time.Duration }

// resolveOrder is the report's order; a case missing from the set-up (no
// podman, no CRI-O, -docker=false) has a row that says so.
var resolveOrder = []string{caseEphem, casePodman, caseCRIPod, caseCRINoAPI,
	caseDockerAPI, caseDockerNoAPI, caseContainerdAPI, caseContainerdNoAPI}

func runResolve(ctx context.Context, o options, stdout, stderr io.Writer) error {
	o.largeMB = 0 // nothing is pulled
	env, cleanup, err := setUp(ctx, o, stderr)
	defer cleanup()
	if err != nil {
		return err
	}
	ephemruntime.Register(local.Registration()) // the schemes of pid:, docker://, ...
	cases, err := resolveCases(env.cases(o))
	if err != nil {
		return err
	}
	for _, c := range cases {
		logf(stderr, "warm-up: %s (%s)", c.name, c.ref.Raw)
		if _, err := c.resolve(ctx); err != nil {
			return fmt.Errorf("warm-up of %s: %w", c.name, err)
		}
	}
	samples := map[string][]resolveSample{}
	for i := range o.runs {
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			s, err := c.resolve(ctx)
			if err != nil {
				return fmt.Errorf("run %d of %s: %w", i+1, c.name, err)
			}
			samples[c.name] = append(samples[c.name], s)
		}
	}
	logf(stderr, "%d rounds done", o.runs)
	return writeResolveReport(stdout, o.runs, cases, samples)
}

// resolveCases takes the reference and environment of each debug case
// (not ephem-large and ephem-base: the same pid: as ephem).
func resolveCases(debug []benchCase) ([]resolveCase, error) {
	var cs []resolveCase
	for _, d := range debug {
		if d.name == caseEphemLarge || d.name == caseEphemBase || len(d.argv) < 2 || d.argv[1] != "debug" {
			continue
		}
		raw := ""
		for _, a := range d.argv[2:] {
			if !strings.HasPrefix(a, "-") {
				raw = a
				break
			}
		}
		ref, err := reftarget.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("parsing the reference of %s: %w", d.name, err)
		}
		form := raw
		if f := strings.Fields(d.what); len(f) > 3 {
			form = f[3]
		}
		var env []string
		for _, kv := range d.env {
			if !strings.HasPrefix(kv, "EPHEM_") {
				env = append(env, kv)
			}
		}
		cs = append(cs, resolveCase{name: d.name, form: form, ref: ref, env: env,
			viaProc: strings.HasSuffix(d.name, "-noapi")})
	}
	return cs, nil
}

// resolve resolves c once with its environment set, checks the result
// (found from /proc exactly when the case is socket-less) and returns its
// wall time and the CPU time this process spent (user + system).
func (c resolveCase) resolve(ctx context.Context) (resolveSample, error) {
	restore := setEnv(c.env)
	defer restore()
	var before, after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		return resolveSample{}, fmt.Errorf("getting the CPU time: %w", err)
	}
	start := time.Now()
	p, err := reftarget.Resolve(ctx, c.ref)
	wall := time.Since(start)
	if err2 := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err2 != nil {
		return resolveSample{}, fmt.Errorf("getting the CPU time: %w", err2)
	}
	switch {
	case err != nil:
		return resolveSample{}, fmt.Errorf("resolving %s: %w", c.ref.Raw, err)
	case p.PID <= 0:
		return resolveSample{}, fmt.Errorf("resolving %s: no PID (%+v)", c.ref.Raw, p)
	case p.ViaProc != c.viaProc:
		return resolveSample{}, fmt.Errorf("resolving %s: found from /proc = %v, want %v (%s)", c.ref.Raw, p.ViaProc, c.viaProc, p.Description)
	}
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()) - time.Duration(before.Utime.Nano()+before.Stime.Nano())
	return resolveSample{wall: wall, cpu: cpu}, nil
}

// setEnv sets the KEY=VALUE pairs of kvs and returns what puts the
// environment back.
func setEnv(kvs []string) (restore func()) {
	var undo []func()
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		old, had := os.LookupEnv(k)
		_ = os.Setenv(k, v)
		undo = append(undo, func() {
			if had {
				_ = os.Setenv(k, old)
			} else {
				_ = os.Unsetenv(k)
			}
		})
	}
	return func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
}

// fine formats d in milliseconds to the microsecond.
func fine(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6) }

func writeResolveReport(w io.Writer, runs int, cases []resolveCase, samples map[string][]resolveSample) error {
	wall, cpu := map[string]stats{}, map[string]stats{}
	for name, ss := range samples {
		var ws, cs []time.Duration
		for _, s := range ss {
			ws, cs = append(ws, s.wall), append(cs, s.cpu)
		}
		wall[name], cpu[name] = summarise(ws), summarise(cs)
	}
	byName := map[string]resolveCase{}
	for _, c := range cases {
		byName[c.name] = c
	}
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Target resolution in-process (target.Resolve, `-mode resolve`), %d interleaved runs per case, %s, %s, %d CPUs, %s (host %s).\n\n",
		runs, time.Now().UTC().Format("2006-01-02 15:04 MST"), kernel(), runtime.NumCPU(), runtime.Version(), host)
	fmt.Fprintln(&b, "| case | reference | min | median | p90 | CPU (median) | median − pid: | target | result |")
	fmt.Fprintln(&b, "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
	pid, havePID := wall[caseEphem]
	for _, name := range resolveOrder {
		c, ok := byName[name]
		s, measured := wall[name]
		if !ok || !measured {
			fmt.Fprintf(&b, "| %s | - | - | - | - | - | - | ≤ pid: + 2 ms | skipped: runtime absent (see the log) |\n", name)
			continue
		}
		diff, goal, result := "-", "-", "-"
		if name != caseEphem && havePID {
			d := s.median - pid.median
			diff, goal, result = fmt.Sprintf("%+.3f ms", float64(d.Nanoseconds())/1e6), "≤ pid: + 2 ms", "PASS"
			if d > resolutionBudget {
				result = "FAIL"
			}
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s | %s | %s | %s |\n",
			name, c.form, fine(s.min), fine(s.median), fine(s.p90), fine(cpu[name].median), diff, goal, result)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
