package main

// The cp mode (-mode cp): the throughput of copying a large file out of a
// local target.
//
//	go run ./hack/bench -mode cp [-runs 5] [-cp-mb 1024] [-ephem BIN]
//
// A file of CP-MB MiB of random bytes is written into a Docker container
// (busybox sleeping, --network none, on the test daemon of
// hack/dockerd.sh) and copied out, round by round in a rotating order, by
//
//   - cp-floor: cp /proc/PID/root/big DIR, the floor (no tar, no resolving);
//   - ephem-cp-pid: ephem cp pid:PID:/big DIR (the container's PID);
//   - ephem-cp-docker: ephem cp docker://NAME:/big DIR;
//   - docker-cp: docker cp NAME:/big DIR (the daemon reads and tars the
//     file, the client unpacks it).
//
// DIR is on a tmpfs of its own, so the disk's writeback is not measured;
// the copy is removed after each run, and its size checked. The source is
// in the page cache after the warm-up run of each case. Peak RSS is the
// copying process's (rusage of the command ephem, cp or docker runs as;
// for docker cp the daemon's share is not counted).

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

const (
	caseCpFloor       = "cp-floor"
	caseCpEphemPID    = "ephem-cp-pid"
	caseCpEphemDocker = "ephem-cp-docker"
	caseCpDocker      = "docker-cp"
)

// cpSample is one timed copy.
type cpSample struct {
	wall   time.Duration
	maxRSS int64 // KiB
}

func (s cpSample) wallTime() time.Duration { return s.wall }

// runCp runs the cp mode and prints its report on stdout.
func runCp(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	load0 := loadAvg()
	work, err := os.MkdirTemp(o.workDir, "ephem-bench-cp-")
	if err != nil {
		return fmt.Errorf("creating a work directory: %w", err)
	}
	undo = append(undo, func() { _ = os.RemoveAll(work) })
	env := &benchEnv{ephem: o.ephem, ephemCache: filepath.Join(work, "cache")}
	if env.ephem == "" {
		logf(stderr, "building ephem (hack/build.sh)")
		if env.ephem, _, err = e2eutil.BuildRelease(ctx, filepath.Join(work, "release")); err != nil {
			return err
		}
	}
	if err := env.setUpDocker(ctx, work, &undo, stderr); err != nil {
		return err
	}
	r, err := e2eutil.Run(ctx, e2eutil.DockerEnv(env.dockerHost), e2eutil.DockerClient, "inspect", "-f", "{{.State.Pid}}", env.dockerCtr)
	if err != nil {
		return fmt.Errorf("finding the container's PID: %w", err)
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("finding the container's PID: docker inspect: exit %d: %s", r.ExitCode, r.Stderr)
	}
	pid := strings.TrimSpace(r.Stdout)
	logf(stderr, "writing %d MiB of random bytes to %s:/big (pid %s)", o.cpMB, env.dockerCtr, pid)
	if err := writeRandomFile("/proc/"+pid+"/root/big", o.cpMB); err != nil {
		return err
	}
	dst := filepath.Join(work, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	if err := command(ctx, nil, "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", o.cpMB+64), "tmpfs", dst); err != nil {
		return fmt.Errorf("mounting the destination's tmpfs: %w", err)
	}
	undo = append(undo, func() { _ = command(context.Background(), nil, "umount", dst) })

	dockerEnv := e2eutil.DockerEnv(env.dockerHost)
	ephemEnv := append([]string{"EPHEM_CACHE_DIR=" + env.ephemCache}, dockerEnv...)
	cases := []benchCase{
		{name: caseCpFloor, what: "cp /proc/PID/root/big DIR", argv: []string{"cp", "/proc/" + pid + "/root/big", dst}},
		{name: caseCpEphemPID, what: "ephem cp pid:PID:/big DIR", env: ephemEnv,
			argv: []string{env.ephem, "cp", "pid:" + pid + ":/big", dst}},
		{name: caseCpEphemDocker, what: "ephem cp docker://C:/big DIR", env: ephemEnv,
			argv: []string{env.ephem, "cp", "docker://" + env.dockerCtr + ":/big", dst}},
		{name: caseCpDocker, what: "docker cp C:/big DIR", env: dockerEnv,
			argv: []string{e2eutil.DockerClient, "cp", env.dockerCtr + ":/big", dst}},
	}
	want := int64(o.cpMB) << 20
	for _, c := range cases {
		logf(stderr, "warm-up: %s", c.name)
		if _, err := runCopy(ctx, c, dst, want); err != nil {
			return fmt.Errorf("warm-up of %s: %w", c.name, err)
		}
	}
	samples := map[string][]cpSample{}
	for i := range o.runs {
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			s, err := runCopy(ctx, c, dst, want)
			if err != nil {
				return fmt.Errorf("run %d of %s: %w", i+1, c.name, err)
			}
			samples[c.name] = append(samples[c.name], s)
		}
		logf(stderr, "round %d/%d done", i+1, o.runs)
	}
	return writeCpReport(stdout, o, cases, samples, load0, loadAvg())
}

// runCopy runs one copy into dst, checks the copy's size and removes it.
func runCopy(ctx context.Context, c benchCase, dst string, want int64) (cpSample, error) {
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return cpSample{}, fmt.Errorf("%s: %w: %s", c.name, err, stderr.String())
	}
	var s cpSample
	s.wall = wall
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.maxRSS = ru.Maxrss
	}
	p := filepath.Join(dst, "big")
	fi, err := os.Stat(p)
	if err != nil {
		return cpSample{}, fmt.Errorf("%s: the copy: %w", c.name, err)
	}
	if fi.Size() != want {
		return cpSample{}, fmt.Errorf("%s: the copy holds %d bytes, want %d", c.name, fi.Size(), want)
	}
	if err := os.Remove(p); err != nil {
		return cpSample{}, err
	}
	return s, nil
}

// writeRandomFile writes mb MiB of random bytes to p.
func writeRandomFile(p string, mb int) (err error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating the source file: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	buf := make([]byte, 1<<20)
	for range mb {
		_, _ = rand.Read(buf)
		if _, err := f.Write(buf); err != nil {
			return fmt.Errorf("writing the source file: %w", err)
		}
	}
	return nil
}

// loadAvg returns /proc/loadavg's three load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func writeCpReport(w io.Writer, o options, cases []benchCase, samples map[string][]cpSample, load0, load1 string) error {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "cp of a %d MiB file out of a local target, %d interleaved runs per case, %s, %s, %d CPUs, %s (host %s), "+
		"load average %s at the start, %s at the end.\n\n",
		o.cpMB, o.runs, time.Now().UTC().Format("2006-01-02 15:04 MST"), kernel(), runtime.NumCPU(), runtime.Version(), host, load0, load1)
	fmt.Fprintln(&b, "| case | command | min | median | p90 | MiB/s (median) | peak RSS | median / floor |")
	fmt.Fprintln(&b, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	floor := summarise(wallsOf(samples[caseCpFloor])).median
	for _, c := range cases {
		ss := samples[c.name]
		if len(ss) == 0 {
			continue
		}
		st := summarise(wallsOf(ss))
		var rss int64
		for _, s := range ss {
			rss = max(rss, s.maxRSS)
		}
		ratio := "-"
		if floor > 0 {
			ratio = strconv.FormatFloat(float64(st.median)/float64(floor), 'f', 2, 64) + "×"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %.0f | %.1f MiB | %s |\n", c.name, c.what, ms(st.min), ms(st.median), ms(st.p90),
			float64(o.cpMB)/st.median.Seconds(), float64(rss)/1024, ratio)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
