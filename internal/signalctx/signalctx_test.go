package signalctx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// The child modes run in a copy of the test binary (TestMain), which sends
// itself SIGTERM after setting up its context as the mode says.
const envMode = "SIGNALCTX_TEST_MODE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envMode); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child sets up a context as mode says, sends itself SIGTERM and reports
// what the context saw: exit 3 if it was cancelled. If the signal was not
// caught, its default action ends the process first.
func child(mode string) int {
	ctx, stop := NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	switch mode {
	case "untouched":
	case "done":
		_ = ctx.Done()
	case "err":
		_ = ctx.Err()
	case "arm":
		Arm(ctx)
	case "derived":
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	case "stopped":
		stop()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		return 2
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		return 2
	}
	select {
	case <-ctx.Done():
		if mode == "stopped" {
			// Cancelled by stop, before the signal: wait for it to end
			// the process, as nothing catches it.
			time.Sleep(10 * time.Second)
			return 4
		}
		return 3
	case <-time.After(10 * time.Second):
		return 5
	}
}

// TestSignalsCaughtOnlyOnceWaitedFor runs each mode in a child process and
// checks how it ended: by the signal (not caught) or by the cancelled
// context (caught).
func TestSignalsCaughtOnlyOnceWaitedFor(t *testing.T) {
	for mode, caught := range map[string]bool{
		"untouched": false, // nothing waits: SIGTERM's default action
		"done":      true,
		"err":       true,
		"arm":       true,
		"derived":   true, // WithTimeout calls Done
		"stopped":   false,
	} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envMode+"="+mode)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child %s: %v %s", mode, err, out)
			}
			ws := exit.Sys().(syscall.WaitStatus)
			if caught {
				if ws.Signaled() || ws.ExitStatus() != 3 {
					t.Errorf("mode %s: %v %s, want the context cancelled (exit 3)", mode, ws, out)
				}
			} else if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("mode %s: %v (exit %d) %s, want killed by SIGTERM, not caught", mode, ws, ws.ExitStatus(), out)
			}
		})
	}
}

// TestContext: values and deadlines are the parent's before and after the
// signals are caught; stop cancels; a derived context hangs on the
// signal-catching one directly (no goroutine: context's own cancelCtx is
// found through Value).
func TestContext(t *testing.T) {
	type key struct{}
	deadline := time.Now().Add(time.Hour)
	parent, cancelParent := context.WithDeadline(context.WithValue(context.Background(), key{}, "v"), deadline)
	defer cancelParent()
	ctx, stop := NotifyContext(parent, syscall.SIGUSR2)
	if ctx.Value(key{}) != "v" {
		t.Errorf("Value before Done: %v", ctx.Value(key{}))
	}
	if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
		t.Errorf("Deadline: %v %v, want %v", d, ok, deadline)
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
	if ctx.Value(key{}) != "v" {
		t.Errorf("Value after Err: %v", ctx.Value(key{}))
	}
	before := runtime.NumGoroutine()
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	if n := runtime.NumGoroutine(); n != before {
		t.Errorf("deriving a context started %d goroutines: it does not hang on the signal-catching one", n-before)
	}
	stop()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not cancel the derived context")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Err after stop: %v", ctx.Err())
	}

	// stop first: cancelled, and nothing caught.
	ctx, stop = NotifyContext(context.Background(), syscall.SIGUSR2)
	stop()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Err after stop first: %v", ctx.Err())
	}
	Arm(context.Background()) // any other context: nothing happens
}
