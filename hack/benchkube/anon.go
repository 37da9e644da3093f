package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// anonPeak samples, every 5 ms until done is closed, the anonymous memory
// (the process's own: heap, stacks) of the child of pid (/usr/bin/time's
// child, ephem and then the kubectl-ephem it executes), and sends the peak
// in MB on the returned channel. The rest of the resident set is the
// binary's pages in the page cache, which this kernel maps in whole large
// folios (up to the binary's size), more or fewer depending on how the
// file entered the page cache: anonymous memory is what compares binaries.
func anonPeak(pid int, done <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		var peak, child int
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if child == 0 {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
				if f := strings.Fields(string(b)); len(f) > 0 {
					child, _ = strconv.Atoi(f[0])
				}
			}
			if child != 0 {
				if kib := anonKiB(child); kib > peak {
					peak = kib
				}
			}
			select {
			case <-done:
				out <- float64(peak) * 1024 / 1e6
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// anonKiB is the Anonymous line of /proc/PID/smaps_rollup, 0 if unread.
func anonKiB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Anonymous:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
