package e2eutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TargetNamespaces are the unshare(1) flags of StartTarget: new pid, net,
// uts and ipc namespaces, as a container has.
var TargetNamespaces = []string{"--fork", "--pid", "--mount-proc", "--net", "--uts", "--ipc"}

// Target is a process running in namespaces of its own.
type Target struct {
	// PID is the host PID of the process, which is PID 1 of its pid namespace.
	PID int
	cmd *exec.Cmd
}

// StartTarget starts `unshare --fork --pid --mount-proc --net --uts --ipc
// ARGS...` (default args: sleep infinity), waits until the inner process
// has been forked, and returns it. The process is killed in t's Cleanup.
func StartTarget(t testing.TB, args ...string) *Target {
	t.Helper()
	RequireRoot(t)
	tg, err := StartNamespaced(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Stop)
	return tg
}

// StartNamespaced is StartTarget for programs that are not tests; call Stop
// when done.
func StartNamespaced(ctx context.Context, args ...string) (*Target, error) {
	if len(args) == 0 {
		args = []string{"sleep", "infinity"}
	}
	cmd := exec.Command("unshare", append(append([]string{}, TargetNamespaces...), args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting unshare: %w", err)
	}
	tg := &Target{cmd: cmd}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		pid, err := onlyChild(cmd.Process.Pid)
		if err == nil {
			tg.PID = pid
			return tg, nil
		}
		select {
		case <-ctx.Done():
			tg.Stop()
			return nil, fmt.Errorf("waiting for unshare (pid %d) to fork its child: %w", cmd.Process.Pid, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// onlyChild returns the PID of the single child of pid.
func onlyChild(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, fmt.Errorf("reading children of %d: %w", pid, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, errors.New("no child process yet")
	}
	child, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, fmt.Errorf("parsing child of %d: %w", pid, err)
	}
	return child, nil
}

// Stop kills the target and unshare with it, and reaps unshare.
func (tg *Target) Stop() {
	if tg.cmd.Process == nil || tg.cmd.ProcessState != nil {
		return
	}
	// The whole process group: unshare and the namespace's init.
	_ = syscall.Kill(-tg.cmd.Process.Pid, syscall.SIGKILL)
	_ = tg.cmd.Wait()
}
