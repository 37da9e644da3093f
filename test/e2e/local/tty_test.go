package local_test

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a terminal the test drives, as a user's terminal emulator would.
type pty struct {
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
}

func openPTY(t *testing.T) (*pty, *os.File) {
	t.Helper()
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
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		t.Fatal(err)
	}
	p := &pty{master: m}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { m.Close() })
	return p, os.NewFile(fd, "slave")
}

func (p *pty) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// expect waits until the terminal shows s after the first skip bytes.
func (p *pty) expect(t *testing.T, s string) {
	t.Helper()
	waitFor(t, 10*time.Second, "the terminal to show "+strings.TrimSpace(s), func() bool { return strings.Contains(p.screen(), s) })
}

func (p *pty) send(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// TestTTY drives "ephem debug -it" through a real terminal: prompt, window
// size and its change, Ctrl-C reaching the shell, and the exit code.
func TestTTY(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	p, slave := openPTY(t)
	cmd := exec.Command(f.bin, "debug", tg.ref(), "-q", "-it", "--image", f.busybox, "--", "sh")
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+f.cache, "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })

	p.expect(t, "/ # ")
	p.send(t, "stty size; tty; echo tty-$((6*7))\r")
	p.expect(t, "tty-42")
	if s := p.screen(); !strings.Contains(s, "24 80") || !strings.Contains(s, "/dev/pts/0") {
		t.Errorf("want a 24x80 terminal at /dev/pts/0 in the container's own devpts:\n%s", s)
	}
	// Resize the user's terminal: ephem gets SIGWINCH and passes it on.
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 132}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	p.send(t, "stty size\r")
	p.expect(t, "50 132")
	// Ctrl-C interrupts the shell's foreground job, not ephem.
	p.send(t, "sleep 3401\r")
	waitFor(t, 5*time.Second, "sleep to run", func() bool { return len(procs("sleep 3401")) == 1 })
	p.send(t, "\x03")
	waitFor(t, 5*time.Second, "sleep to be interrupted", func() bool { return len(procs("sleep 3401")) == 0 })
	p.send(t, "echo still-$((1+1))\r")
	p.expect(t, "still-2")
	p.send(t, "exit 7\r")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ephem did not exit after the shell did:\n%s", p.screen())
	}
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Errorf("exit %d, want the shell's 7", code)
	}
	assertClean(t, f, "sleep 3401")
}

// TestPullProgressOnTTY: on a terminal, the pull draws a bar per layer.
func TestPullProgressOnTTY(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	p, slave := openPTY(t)
	cmd := exec.Command(f.bin, "debug", tg.ref(), "--image", f.busybox, "--", "true")
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+t.TempDir())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ephem: %v\n%s", err, p.screen())
	}
	if s := p.screen(); !regexp.MustCompile(`sha256:[0-9a-f]{12} \[=+\] ([0-9.]+)/([0-9.]+) [kKMG]?B`).MatchString(s) {
		t.Errorf("no progress bar on the terminal:\n%q", s)
	}
}

// TestDetach: the detach keys end the attachment; the local engine does
// not keep detached sessions, so it ends the session and says so.
func TestDetach(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	p, slave := openPTY(t)
	cmd := exec.Command(f.bin, "debug", tg.ref(), "-q", "-it", "--image", f.busybox, "--", "sh")
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+f.cache)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	p.expect(t, "/ # ")
	p.send(t, "\x10\x11")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ephem did not detach:\n%s", p.screen())
	}
	p.expect(t, "detached")
	assertClean(t, f, "ephem-init")
}
