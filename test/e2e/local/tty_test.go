package local_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// ephemTerminal starts ephem on a new terminal with the given cache.
func ephemTerminal(t *testing.T, f *fixture, cache string, args ...string) *e2eutil.Terminal {
	t.Helper()
	cmd := exec.Command(f.bin, args...)
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+cache, "TERM=xterm")
	return e2eutil.StartTerminal(t, cmd)
}

// TestTTY drives "ephem debug -it" through a real terminal: prompt, window
// size and its change, Ctrl-C reaching the shell, and the exit code.
func TestTTY(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	term := ephemTerminal(t, f, f.cache, "debug", tg.ref(), "-q", "-it", "--image", f.busybox, "--", "sh")
	const d = 10 * time.Second

	term.Expect(t, "/ # ", d)
	term.Send(t, "stty size; tty; echo tty-$((6*7))\r")
	term.Expect(t, "tty-42", d)
	if s := term.Screen(); !strings.Contains(s, "24 80") || !strings.Contains(s, "/dev/pts/0") {
		t.Errorf("want a 24x80 terminal at /dev/pts/0 in the container's own devpts:\n%s", s)
	}
	// Resize the user's terminal: ephem gets SIGWINCH and passes it on.
	term.Resize(t, 50, 132)
	term.SendUntil(t, "stty size\r", "50 132", d)
	// Ctrl-C interrupts the shell's foreground job, not ephem.
	term.Send(t, "sleep 3401\r")
	waitFor(t, 5*time.Second, "sleep to run", func() bool { return len(procs("sleep 3401")) == 1 })
	term.Send(t, "\x03")
	waitFor(t, 5*time.Second, "sleep to be interrupted", func() bool { return len(procs("sleep 3401")) == 0 })
	term.Send(t, "echo still-$((1+1))\r")
	term.Expect(t, "still-2", d)
	term.Send(t, "exit 7\r")
	if code := term.Wait(t, d); code != 7 {
		t.Errorf("exit %d, want the shell's 7", code)
	}
	assertClean(t, f, "sleep 3401")
}

// TestPullProgressOnTTY: on a terminal, the pull draws a bar per layer.
func TestPullProgressOnTTY(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	term := ephemTerminal(t, f, t.TempDir(), "debug", tg.ref(), "--image", f.busybox, "--", "true")
	if code := term.Wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d:\n%s", code, term.Screen())
	}
	if s := term.Screen(); !regexp.MustCompile(`sha256:[0-9a-f]{12} \[=+\] ([0-9.]+)/([0-9.]+) [kKMG]?B`).MatchString(s) {
		t.Errorf("no progress bar on the terminal:\n%q", s)
	}
}

// TestDetachAndAttach: ctrl-p ctrl-q detaches from an interactive session,
// which keeps running; ephem ls lists it and ephem attach reattaches, one
// client at a time; its exit code is the attaching ephem's. A client killed
// without detaching ends the session, as the first one does.
func TestDetachAndAttach(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	const d = 10 * time.Second
	term := ephemTerminal(t, f, f.cache, "debug", tg.ref(), "-q", "-it", "--image", f.busybox, "--", "sh")
	term.Expect(t, "/ # ", d)
	term.Send(t, "sleep 3601 &\r")
	waitFor(t, d, "the background job", func() bool { return len(procs("sleep 3601")) == 1 })
	term.Send(t, "\x10\x11")
	if code := term.Wait(t, d); code != 0 {
		t.Fatalf("detach: exit %d:\n%s", code, term.Screen())
	}
	term.Expect(t, "reattach with: ephem attach ", d)
	m := regexp.MustCompile(`reattach with: ephem attach ([0-9a-f]+)`).FindStringSubmatch(term.Screen())
	if m == nil {
		t.Fatalf("no reattach hint:\n%s", term.Screen())
	}
	id := m[1]
	if len(procs("sleep 3601")) != 1 {
		t.Fatal("the session did not survive the detach")
	}
	if out := f.ephem(t, "ls").Stdout; !strings.Contains(out, id) || !strings.Contains(out, tg.ref()) {
		t.Errorf("ephem ls does not list session %s:\n%s", id, out)
	}
	// The detached session keeps its image: forgetting and pruning it
	// leaves the layers it runs on.
	if r := f.ephem(t, "images", "rm", f.busybox); r.ExitCode != 0 {
		t.Fatalf("images rm: %s", r.Stderr)
	}
	if r := f.ephem(t, "images", "prune"); r.ExitCode != 0 {
		t.Fatalf("images prune: %s", r.Stderr)
	}

	again := ephemTerminal(t, f, f.cache, "attach", id)
	again.Send(t, "\r")
	again.Expect(t, "/ # ", d)
	// One client at a time.
	if r := f.ephem(t, "attach", id); r.ExitCode != 72 || !strings.Contains(r.Stderr, "attached elsewhere") {
		t.Errorf("second attach: exit %d %q, want the refusal 72 (busy)", r.ExitCode, r.Stderr)
	}
	again.Send(t, "jobs; ls /bin/busybox && echo back-$((3+3)); exit 6\r")
	again.Expect(t, "back-6", d)
	if code := again.Wait(t, d); code != 6 {
		t.Errorf("attach: exit %d, want the shell's 6:\n%s", code, again.Screen())
	}
	assertClean(t, f, "sleep 3601")
	if out := f.ephem(t, "ls").Stdout; strings.Contains(out, id) {
		t.Errorf("ephem ls still lists the ended session:\n%s", out)
	}
	if r := f.ephem(t, "attach", id); r.ExitCode != 66 {
		t.Errorf("attach to an ended session: exit %d, want 66", r.ExitCode)
	}

	// A reattached client killed without detaching ends the session. The
	// image was removed above: this session pulls and unpacks it again,
	// which a loaded machine may take longer than d for.
	term = ephemTerminal(t, f, f.cache, "debug", tg.ref(), "-q", "-it", "--image", f.busybox, "--", "sh")
	term.Expect(t, "/ # ", 3*d)
	term.Send(t, "sleep 3602 &\r")
	waitFor(t, d, "the background job", func() bool { return len(procs("sleep 3602")) == 1 })
	term.Send(t, "\x10\x11")
	term.Wait(t, d)
	term.Expect(t, "reattach with: ephem attach ", d)
	id = regexp.MustCompile(`ephem attach ([0-9a-f]+)`).FindStringSubmatch(term.Screen())[1]
	cmd := exec.Command(f.bin, "attach", id)
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+f.cache)
	again = e2eutil.StartTerminal(t, cmd)
	again.Send(t, "\r")
	again.Expect(t, "/ # ", d)
	_ = cmd.Process.Kill()
	assertClean(t, f, "sleep 3602")
}
