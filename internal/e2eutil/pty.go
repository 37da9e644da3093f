package e2eutil

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Terminal is a pseudo-terminal a test drives as a user's terminal emulator
// would: the command runs on its slave end as the session leader, and the
// test types into the master and reads the screen from it.
type Terminal struct {
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
}

// StartTerminal starts cmd on a new 24x80 terminal. The command and the
// terminal are cleaned up with t.
func StartTerminal(t testing.TB, cmd *exec.Cmd) *Terminal {
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
	slave := os.NewFile(fd, "pts")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	term := &Terminal{master: m, cmd: cmd}
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

// Screen is everything the terminal has shown.
func (term *Terminal) Screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// Expect waits up to d for the terminal to show s.
func (term *Terminal) Expect(t testing.TB, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(term.Screen(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal did not show %q within %v:\n%s", s, d, term.Screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SendUntil types s, and types it again every half second, until the
// terminal shows want or d has passed. It is for what takes effect
// asynchronously, like a resize reaching the program behind the terminal.
func (term *Terminal) SendUntil(t testing.TB, s, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		term.Send(t, s)
		next := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(next) {
			if strings.Contains(term.Screen(), want) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal did not show %q within %v:\n%s", want, d, term.Screen())
		}
	}
}

// Send types s.
func (term *Terminal) Send(t testing.TB, s string) {
	t.Helper()
	if _, err := term.master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// Resize changes the window size, as resizing a terminal emulator does
// (the foreground process gets SIGWINCH).
func (term *Terminal) Resize(t testing.TB, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(term.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}

// Wait waits up to d for the command to exit and returns its exit code.
func (term *Terminal) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = term.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("the command did not exit within %v:\n%s", d, term.Screen())
	}
	return term.cmd.ProcessState.ExitCode()
}
