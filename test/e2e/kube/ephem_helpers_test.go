//go:build e2e_kube

package kube_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"golang.org/x/sys/unix"
)

// ephemResult is one run of the ephem binary.
type ephemResult struct {
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

// ephem runs the ephem binary against the test cluster in namespace ns.
func ephem(t *testing.T, ns string, args ...string) ephemResult {
	t.Helper()
	return ephemEnv(t, ns, nil, args...)
}

func ephemEnv(t *testing.T, ns string, env []string, args ...string) ephemResult {
	t.Helper()
	bin := e2eutil.BuildEphem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := ephemResult{Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running ephem %v: %v", args, err)
	}
	return r
}

// mustEphem runs ephem and fails t unless it exits 0.
func mustEphem(t *testing.T, ns string, args ...string) string {
	t.Helper()
	r := ephem(t, ns, args...)
	if r.Code != 0 {
		t.Fatalf("ephem %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// ephemeralNames lists the pod's ephemeral containers.
func ephemeralNames(t *testing.T, ns, pod string) []string {
	t.Helper()
	out, stderr, err := cluster.Kubectl(context.Background(), "-n", ns, "get", "pod", pod, "-o", "jsonpath={.spec.ephemeralContainers[*].name}")
	if err != nil {
		t.Fatalf("reading pod %s: %v: %s", pod, err, stderr)
	}
	return strings.Fields(out)
}

// terminal is a pty the test drives as a user's terminal would.
type terminal struct {
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	cmd    *exec.Cmd
}

// ephemTTY runs ephem on a new pty.
func ephemTTY(t *testing.T, ns string, args ...string) *terminal {
	t.Helper()
	bin := e2eutil.BuildEphem(t)
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		t.Fatal(errno)
	}
	_ = unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	slave := os.NewFile(fd, "pts")
	cmd := exec.Command(bin, append([]string{"-n", ns}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	term := &terminal{master: m, cmd: cmd}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait(); m.Close() })
	return term
}

func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

func (term *terminal) expect(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(term.screen(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q:\n%s", s, term.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (term *terminal) send(t *testing.T, s string) {
	t.Helper()
	if _, err := term.master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// wait waits for ephem to exit and returns its code.
func (term *terminal) wait(t *testing.T) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = term.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("ephem did not exit:\n%s", term.screen())
	}
	return term.cmd.ProcessState.ExitCode()
}
