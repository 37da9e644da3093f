package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// wallsOf is the wall time of each of a case's samples.
func wallsOf[S interface{ wallTime() time.Duration }](ss []S) []time.Duration {
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = s.wallTime()
	}
	return ds
}

// stats summarises the samples of one case.
type stats struct {
	n                int
	min, median, p90 time.Duration
}

// summarise returns the minimum, median and 90th percentile (nearest rank)
// of ds.
func summarise(ds []time.Duration) stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return stats{}
	}
	median := s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	rank := (90*n + 99) / 100 // ceil(0.9 n), 1-based
	return stats{n: n, min: s[0], median: median, p90: s[rank-1]}
}

// report is what writeReport prints.
type report struct {
	opts    options
	env     *benchEnv
	samples map[string][]time.Duration
	rss     map[string][]int64 // peak RSS in KiB (measureRSS)
}

// target is one pass/fail goal on a ratio of medians.
type target struct {
	what   string
	ratio  float64
	goal   string
	passed bool
	info   bool // a figure to report, with no goal
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func (r report) targets(st map[string]stats) []target {
	var ts []target
	ratio := func(a, b string) (float64, bool) {
		sa, oka := st[a]
		sb, okb := st[b]
		if !oka || !okb || sb.median == 0 {
			return 0, false
		}
		return float64(sa.median) / float64(sb.median), true
	}
	if x, ok := ratio(caseEphem, caseNsenter); ok {
		ts = append(ts, target{what: "ephem / nsenter", ratio: x, goal: "≤ 3.5×", passed: x <= 3.5})
	}
	if x, ok := ratio(caseEphemVersion, caseGoEmpty); ok {
		ts = append(ts, target{what: "ephem version / empty Go program", ratio: x, goal: "≤ 2.5×", passed: x <= 2.5})
	}
	if x, ok := ratio(caseGoFloor, caseGoEmpty); ok {
		ts = append(ts, target{what: "go-floor / empty Go program", ratio: x, goal: "(the floor of ephem version, no goal)", info: true})
	}
	if x, ok := ratio(caseBaseVersion, caseGoEmpty); ok {
		ts = append(ts, target{what: "ephem-base version / empty Go program", ratio: x, goal: "(a comparison, no goal)", info: true})
	}
	if x, ok := ratio(caseDocker, caseEphem); ok {
		ts = append(ts, target{what: "docker run / ephem", ratio: x, goal: "≥ 8× (ephem 8× faster)", passed: x >= 8})
	}
	if x, ok := ratio(caseEphemLarge, caseEphem); ok {
		ts = append(ts, target{what: fmt.Sprintf("ephem %d MiB image / busybox", r.opts.largeMB), ratio: x,
			goal: "≤ 1.10× (within 10%)", passed: x <= 1.10})
	}
	ts = append(ts, resolutionTargets(st)...)
	if x, ok := ratio(caseEphem, caseEphemBase); ok {
		ts = append(ts, target{what: "ephem / ephem-base", ratio: x, goal: "(a comparison, no goal)", info: true})
	}
	return ts
}

func writeReport(w io.Writer, r report) error {
	st := map[string]stats{}
	for k, v := range r.samples {
		st[k] = summarise(v)
	}
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Warm time-to-command, %d interleaved runs per case, %s, %s, %d CPUs, %s (host %s).\n\n",
		r.opts.runs, time.Now().UTC().Format("2006-01-02 15:04 MST"), kernel(), runtime.NumCPU(), runtime.Version(), host)
	fmt.Fprintln(&b, "| case | command | min | median | p90 | peak RSS (median) |")
	fmt.Fprintln(&b, "| --- | --- | ---: | ---: | ---: | ---: |")
	for _, c := range r.env.cases(r.opts) {
		s, ok := st[c.name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s |\n", c.name, c.what, ms(s.min), ms(s.median), ms(s.p90), medianMB(r.rss[c.name]))
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| ratio of medians | value | target | result |")
	fmt.Fprintln(&b, "| --- | ---: | --- | --- |")
	for _, t := range r.targets(st) {
		result := "PASS"
		switch {
		case t.info:
			result = "-"
		case !t.passed:
			result = "FAIL"
		}
		fmt.Fprintf(&b, "| %s | %.2f× | %s | %s |\n", t.what, t.ratio, t.goal, result)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// medianMB is the median of KiB samples in MB (10^6 bytes), or "-".
func medianMB(kib []int64) string {
	if len(kib) == 0 {
		return "-"
	}
	s := slices.Clone(kib)
	slices.Sort(s)
	return fmt.Sprintf("%.1f MB", float64(s[len(s)/2])*1024/1e6)
}

// kernel returns "Linux RELEASE".
func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Linux"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// resolutionBudget is what resolving a runtime's reference may add to pid:
// (issue 8), through the runtime's API or without it.
const resolutionBudget = 2 * time.Millisecond

// resolutionTargets are the goals of the runtime cases: each adds at most
// resolutionBudget to pid: (medians).
func resolutionTargets(st map[string]stats) []target {
	e, ok := st[caseEphem]
	if !ok || e.median == 0 {
		return nil
	}
	var ts []target
	for _, name := range []string{casePodman, caseCRIPod, caseCRINoAPI, caseDockerAPI, caseDockerNoAPI, caseContainerdAPI, caseContainerdNoAPI} {
		c, ok := st[name]
		if !ok {
			continue
		}
		diff := c.median - e.median
		ts = append(ts, target{
			what:   fmt.Sprintf("%s / pid: (%+.1f ms)", name, float64(diff.Microseconds())/1000),
			ratio:  float64(c.median) / float64(e.median),
			goal:   "≤ pid: + 2 ms",
			passed: diff <= resolutionBudget,
		})
	}
	return ts
}
