package local

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
)

// startIn starts sleep in user namespaces nested depth deep (each one
// mapping its root to its creator) and returns the sleep's PID.
func startIn(t *testing.T, depth int) int {
	t.Helper()
	args := []string{}
	for range depth {
		args = append(args, "unshare", "--user", "--map-root-user")
	}
	args = append(args, "sleep", "30")
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	// unshare execs: the PID stays; wait until it is sleep in its namespace.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
		if strings.TrimSpace(string(b)) == "sleep" {
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep did not start in %d user namespaces", depth)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOwnsUserNS: a user namespace this process's user made, directly or
// as an ancestor, is its own; the initial one (PID 1's) is not.
func TestOwnsUserNS(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	for _, depth := range []int{1, 2} {
		pid := startIn(t, depth)
		if owned, err := ownsUserNS(pid); err != nil || !owned {
			t.Errorf("depth %d: owned %v, %v; want owned", depth, owned, err)
		}
	}
	// Some hosts refuse even root PID 1's namespaces (an error): not owned.
	if owned, err := ownsUserNS(1); owned {
		t.Errorf("pid 1: owned %v, %v; want not owned", owned, err)
	}
	if os.Geteuid() == 0 {
		err := checkOwned(1)
		if !errors.Is(err, runtime.ErrPermission) || !strings.Contains(err.Error(), "needs root: pid:1 runs as uid 0 in a user namespace you do not own") {
			t.Errorf("checkOwned(1) = %v, want ErrPermission saying pid 1 runs in a user namespace you do not own", err)
		}
	}
}

// TestRootlessOnly: the user namespace comes first and the namespaces the
// target's user namespace owns follow; one ephem already shares is not
// there at all.
func TestRootlessOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to open another process's namespaces freely")
	}
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "--uts", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	time.Sleep(200 * time.Millisecond)
	tg, err := open(cmd.Process.Pid, true)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.close()
	if err := tg.rootlessOnly(os.Stderr); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tg.ns, ","); got != "user,uts,net" {
		t.Errorf("namespaces %s, want user,uts,net", got)
	}
}
