package main

// -mode shell: time to a working shell, ephem debug -it vs kubectl debug -it,
// both under a pseudo-terminal. -mode output: time to the first byte of a
// command's output and to its end, ephem debug -- CMD vs kubectl debug --
// CMD followed by kubectl logs -f (retried until the kubelet serves it).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// timing is one timed run: to the shell (or first byte) and to the end,
// from start; container is the debug container it added.
type timing struct {
	first, end time.Duration
	start      time.Time
	container  string
}

func runPrompt(ctx context.Context, b *bench, mode string, runs int, stdout, stderr io.Writer) error {
	type side struct {
		name string
		fn   func(context.Context, int) (timing, error)
	}
	var cases []side
	first := "to a working shell"
	if mode == "shell" {
		cases = []side{
			{"ephem debug -it pod/P --image busybox -- sh", b.ephemShell},
			{"kubectl debug -it P --image busybox --target C -- sh", b.kubectlShell},
		}
	} else {
		first = "to the first byte"
		cases = []side{
			{"ephem debug pod/P --image busybox -- sh -c 'echo first; sleep 1; echo second'", b.ephemOutput},
			{"kubectl debug P --image busybox --target C -- sh -c '...', then kubectl logs -f (retried)", b.kubectlOutput},
		}
	}
	samples := make([][]timing, len(cases))
	since := time.Now()
	seen := map[string]bool{}
	if _, err := b.newContainers(ctx, seen); err != nil {
		return err
	}
	for i := 0; i <= runs; i++ { // run 0 warms the image and connections
		for k := range cases {
			j := (i + k) % len(cases) // alternate who goes first
			// Start with the kubelet idle on the pod: right after a sync
			// of it (the previous container's end) the next one waits
			// for a relist, up to a second, for either tool.
			time.Sleep(2 * time.Second)
			s, err := cases[j].fn(ctx, i)
			if err != nil {
				return fmt.Errorf("%s: %w", cases[j].name, err)
			}
			if added, err := b.newContainers(ctx, seen); err != nil {
				return err
			} else if len(added) == 1 {
				s.container = added[0]
			}
			if i > 0 {
				samples[j] = append(samples[j], s)
			}
		}
		fmt.Fprintf(stderr, "benchkube: round %d/%d\n", i, runs)
	}
	fmt.Fprintf(stdout, "| case | %s: min | median | p90 | to the end: median |\n| --- | ---: | ---: | ---: | ---: |\n", first)
	med := make([]time.Duration, len(cases))
	for j, cs := range cases {
		f, e := durations(samples[j], func(s timing) time.Duration { return s.first }), durations(samples[j], func(s timing) time.Duration { return s.end })
		med[j] = f[len(f)/2]
		fmt.Fprintf(stdout, "| `%s` | %s | %s | %s | %s |\n", cs.name, ms(f[0]), ms(med[j]), ms(f[(len(f)*9+9)/10-1]), ms(e[len(e)/2]))
	}
	target := 0.5
	if mode == "output" {
		target = 0.6
	}
	ratio := float64(med[0]) / float64(med[1])
	verdict := "PASS"
	if ratio > target {
		verdict = "FAIL"
	}
	fmt.Fprintf(stdout, "\nephem / kubectl %s (medians): %.2fx (target <= %.1fx): %s; %d pairs, interleaved\n", first, ratio, target, verdict, runs)
	names := make([]string, len(cases))
	for j, cs := range cases {
		names[j] = cs.name
	}
	if err := printNodePhases(stdout, filepath.Join(b.c.Dir, "logs", "containerd.log"), since, names, samples,
		target, time.Duration(target*float64(med[1]))); err != nil {
		fmt.Fprintf(stderr, "benchkube: no node phases: %v\n", err)
	}
	return nil
}

func durations(s []timing, f func(timing) time.Duration) []time.Duration {
	d := make([]time.Duration, len(s))
	for i := range s {
		d[i] = f(s[i])
	}
	sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
	return d
}

func (b *bench) ephemShell(ctx context.Context, _ int) (timing, error) {
	return b.shell(b.ephemCmd(ctx, "debug", "-it", "-n", b.ns, "pod/"+b.pod, "--image", b.c.Image("busybox"), "--", "sh"))
}

func (b *bench) kubectlShell(ctx context.Context, i int) (timing, error) {
	return b.shell(exec.CommandContext(ctx, b.c.KubectlPath, "--kubeconfig", b.c.Kubeconfig, "-n", b.ns, "debug", "-it", b.pod,
		"-c", fmt.Sprintf("kshell-%d", i), "--image", b.c.Image("busybox"), "--target", b.ctr, "--", "sh"))
}

func (b *bench) ephemCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.ephem, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+b.c.Kubeconfig)
	return cmd
}

// shell runs cmd on a pseudo-terminal, types a command at once (the
// terminal keeps it until the session reads it; READY is typed with two
// single quotes inside so that its echo does not match) and times until the
// shell's answer, then exits it.
func (b *bench) shell(cmd *exec.Cmd) (timing, error) {
	master, pts, err := openPTY()
	if err != nil {
		return timing{}, err
	}
	defer master.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	out := &watchBuffer{want: []byte("READY"), seen: make(chan struct{})}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pts.Close()
		return timing{}, err
	}
	pts.Close()
	go func() { _, _ = io.Copy(out, master) }()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if _, err := master.Write([]byte("echo RE''ADY\r")); err != nil {
		return timing{}, err
	}
	s := timing{start: start}
	timeout := time.After(time.Minute)
	for s.first == 0 {
		select {
		case <-out.seen:
			s.first = time.Since(start)
		case err := <-exited:
			return s, fmt.Errorf("ended before the shell answered (%w): %s", err, out.String())
		case <-time.After(3 * time.Second):
			_, _ = master.Write([]byte("echo RE''ADY\r")) // lost: type it again
		case <-timeout:
			_ = cmd.Process.Kill()
			return s, fmt.Errorf("no shell after a minute: %s", out.String())
		}
	}
	_, _ = master.Write([]byte("exit\r"))
	select {
	case err := <-exited:
		if err != nil {
			return s, fmt.Errorf("%w: %s", err, out.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		return s, fmt.Errorf("did not end after exit: %s", out.String())
	}
	s.end = time.Since(start)
	return s, nil
}

func (b *bench) ephemOutput(ctx context.Context, _ int) (timing, error) {
	cmd := b.ephemCmd(ctx, "debug", "-q", "-n", b.ns, "pod/"+b.pod, "--image", b.c.Image("busybox"), "--", "sh", "-c", "echo first; sleep 1; echo second")
	start := time.Now()
	s, out, err := firstByte(cmd, start)
	if err != nil {
		return s, fmt.Errorf("%w: %s", err, out)
	}
	if !strings.Contains(out, "first\nsecond\n") {
		return s, fmt.Errorf("want first and second, got %q", out)
	}
	return s, nil
}

func (b *bench) kubectlOutput(ctx context.Context, i int) (timing, error) {
	name := fmt.Sprintf("kout-%d", i)
	start := time.Now()
	out, err := exec.CommandContext(ctx, b.c.KubectlPath, "--kubeconfig", b.c.Kubeconfig, "-n", b.ns, "debug", b.pod, "-c", name,
		"--image", b.c.Image("busybox"), "--target", b.ctr, "--", "sh", "-c", "echo first; sleep 1; echo second").CombinedOutput()
	if err != nil {
		return timing{}, fmt.Errorf("%w: %s", err, out)
	}
	for time.Since(start) < time.Minute {
		cmd := exec.CommandContext(ctx, b.c.KubectlPath, "--kubeconfig", b.c.Kubeconfig, "-n", b.ns, "logs", "-f", b.pod, "-c", name)
		s, out, err := firstByte(cmd, start)
		if err == nil && strings.Contains(out, "first\nsecond\n") {
			return s, nil
		}
		if waiting := strings.Contains(out, "waiting to start") || strings.Contains(out, "is not available"); err == nil || !waiting {
			return s, fmt.Errorf("kubectl logs: %w: %q", err, out)
		}
	}
	return timing{}, fmt.Errorf("kubectl logs never served %s", name)
}

// firstByte runs cmd and times its first byte of standard output and its
// end from start.
func firstByte(cmd *exec.Cmd, start time.Time) (timing, string, error) {
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	r, err := cmd.StdoutPipe()
	if err != nil {
		return timing{}, "", err
	}
	if err := cmd.Start(); err != nil {
		return timing{}, "", err
	}
	s := timing{start: start}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, rerr := r.Read(buf)
		if n > 0 && s.first == 0 {
			s.first = time.Since(start)
		}
		out.Write(buf[:n])
		if rerr != nil {
			break
		}
	}
	err = cmd.Wait()
	s.end = time.Since(start)
	return s, out.String() + errOut.String(), err
}

// watchBuffer collects output and closes seen when want appears.
type watchBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want []byte
	seen chan struct{}
	done bool
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && bytes.Contains(w.buf.Bytes(), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// openPTY opens a pseudo-terminal pair of 24x80.
func openPTY() (master, pts *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking the pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("naming the pty: %w", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		master.Close()
		pts.Close()
		return nil, nil, err
	}
	return master, pts, nil
}
