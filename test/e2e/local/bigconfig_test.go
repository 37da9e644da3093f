package local_test

import (
	"strings"
	"testing"
)

// TestLargeConfig: an environment of 300 kB (three values of 100 kB, each
// of which execve takes) reaches the command; it once failed with
// "sending config message: message too long" (71).
func TestLargeConfig(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	big := strings.Repeat("v", 100_000)
	r := f.ephem(t, "debug", tg.ref(), "-q", "--image", f.busybox, "-e", "A="+big, "-e", "B="+big, "-e", "C="+big,
		"--", "sh", "-c", `echo ${#A} ${#B} ${#C}`)
	if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "100000 100000 100000" {
		t.Errorf("exit %d stdout %q stderr %q, want the three lengths", r.ExitCode, r.Stdout, r.Stderr)
	}
}
