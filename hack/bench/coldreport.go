package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// writeColdReport prints the coldpull mode's report: the timings, MB/s,
// CPU and peak RSS of each case, and the phases of ephem's median runs.
func writeColdReport(w io.Writer, o options, cases []coldCase, samples map[string][]coldSample, load0, load1 string) error {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Cold pull + first run, empty cache, %d interleaved runs per case, %s, %s, %d CPUs, %s (host %s), "+
		"load average %s at the start, %s at the end.\n\n",
		o.runs, time.Now().UTC().Format("2006-01-02 15:04 MST"), kernel(), runtime.NumCPU(), runtime.Version(), host, load0, load1)
	fmt.Fprintln(&b, "| case | image | min | median | p90 | MB/s (median) | CPU s (median) | CPU s / MB | peak RSS | median / docker |")
	fmt.Fprintln(&b, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	med := map[string]time.Duration{}
	for _, c := range cases {
		med[c.name] = summarise(wallsOf(samples[c.name])).median
	}
	for _, c := range cases {
		ss := samples[c.name]
		if len(ss) == 0 {
			continue
		}
		st := summarise(wallsOf(ss))
		cpus := make([]time.Duration, len(ss))
		var rss int64
		for i, s := range ss {
			cpus[i] = s.cpu
			rss = max(rss, s.maxRSS)
		}
		cpu := summarise(cpus).median
		mbs := float64(c.img.compressed) / 1e6
		rssCol := "-"
		if rss > 0 {
			rssCol = fmt.Sprintf("%.1f MiB", float64(rss)/1024)
		}
		ratio := "-"
		if d := med["docker-cold-"+c.img.name]; d > 0 && !strings.HasPrefix(c.name, "docker") {
			ratio = fmt.Sprintf("%.2f×", float64(st.median)/float64(d))
		}
		fmt.Fprintf(&b, "| %s | %s (%d layers, %.1f MB) | %s | %s | %s | %.0f | %.2f | %.4f | %s | %s |\n",
			c.name, c.img.name, c.img.layers, mbs, ms(st.min), ms(st.median), ms(st.p90), mbs/st.median.Seconds(),
			cpu.Seconds(), cpu.Seconds()/mbs, rssCol, ratio)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Phases of ephem (EPHEM_DEBUG_TIMING, median of each):")
	fmt.Fprintln(&b)
	for _, c := range cases {
		ss := samples[c.name]
		if len(ss) == 0 || ss[0].phases == nil {
			continue
		}
		var parts []string
		for _, k := range ss[0].order {
			ds := make([]time.Duration, 0, len(ss))
			for _, s := range ss {
				ds = append(ds, s.phases[k])
			}
			parts = append(parts, fmt.Sprintf("%s %s", k, ms(summarise(ds).median)))
		}
		fmt.Fprintf(&b, "- %s: %s\n", c.name, strings.Join(parts, ", "))
		if l := medianSample(ss).layers; l != "" {
			fmt.Fprintf(&b, "  - layers of its median run (size, start, duration): %s\n", l)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// medianSample returns the sample of median wall time.
func medianSample(ss []coldSample) coldSample {
	s := slices.Clone(ss)
	slices.SortFunc(s, func(a, b coldSample) int { return cmp.Compare(a.wall, b.wall) })
	return s[len(s)/2]
}
