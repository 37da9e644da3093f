package main

import (
	"testing"
	"time"
)

func TestSummarise(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		want stats
	}{
		{"empty", nil, stats{}},
		{"odd", ms(5, 1, 3), stats{n: 3, min: ms(1)[0], median: ms(3)[0], p90: ms(5)[0]}},
		{"even", ms(4, 1, 3, 2), stats{n: 4, min: ms(1)[0], median: 2500 * time.Microsecond, p90: ms(4)[0]}},
		// Nearest rank: ceil(0.9*10) = 9th of 10.
		{"ten", ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), stats{n: 10, min: ms(1)[0], median: 5500 * time.Microsecond, p90: ms(9)[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarise(tt.in); got != tt.want {
				t.Errorf("summarise(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	r := report{opts: options{largeMB: 500}}
	st := map[string]stats{
		caseNsenter:    {median: 10 * time.Millisecond},
		caseEphem:      {median: 14 * time.Millisecond},
		caseEphemLarge: {median: 16 * time.Millisecond},
		caseDocker:     {median: 100 * time.Millisecond},
	}
	got := map[string]bool{}
	for _, tg := range r.targets(st) {
		got[tg.what] = tg.passed
	}
	want := map[string]bool{"ephem / nsenter": true, "docker run / ephem": false, "ephem 500 MiB image / busybox": false}
	for k, v := range want {
		if p, ok := got[k]; !ok || p != v {
			t.Errorf("target %q passed = %v (present %v), want %v", k, p, ok, v)
		}
	}
}

func TestMedianMB(t *testing.T) {
	for _, tc := range []struct {
		kib  []int64
		want string
	}{{nil, "-"}, {[]int64{20000}, "20.5 MB"}, {[]int64{30000, 10000, 20000}, "20.5 MB"}} {
		if got := medianMB(tc.kib); got != tc.want {
			t.Errorf("medianMB(%v) = %q, want %q", tc.kib, got, tc.want)
		}
	}
}
