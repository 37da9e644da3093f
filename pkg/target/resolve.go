package target

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Process is a local target resolved to a running process.
type Process struct {
	// PID is the process ID in the host's PID namespace.
	PID int
	// Description names the target for messages ("docker container web").
	Description string
	// ViaProc says the runtime did not answer and the process was found
	// from /proc by the container's ID.
	ViaProc bool
	// Chosen is the full reference a bare NAME was found to mean
	// ("docker://web"), for the log; empty for any other reference.
	Chosen string
	// Stopped is set, and PID is 0, when the target runs nothing to join:
	// a container that is not running, or an image. The debug container
	// then gets fresh namespaces and this filesystem read-only at /target.
	Stopped *Filesystem
}

// Filesystem is the filesystem of a target that runs nothing: a stopped
// container's layers, or an image the engine pulls.
type Filesystem struct {
	// Layers are directories stacked read-only (overlayfs lowerdirs), the
	// topmost first: for a container, its writable layer, then its
	// image's layers. Empty when Image is set.
	Layers []string
	// Image is an image reference (anything --image accepts) whose layers
	// the engine pulls and stacks, for image://REF targets.
	Image string
	// State says why nothing runs, for the notice on stderr
	// ("exited with code 3 at 2026-12-02T16:20:01Z").
	State string
}

// ResolvePID resolves "pid:N": the process itself, if it is a live
// process (not a thread or a kernel thread).
func ResolvePID(_ context.Context, r Ref) (Process, error) {
	if err := checkProcess(r.PID()); err != nil {
		return Process{}, err
	}
	return Process{PID: r.PID(), Description: "process " + r.Name}, CheckAlive(r.PID())
}

// ResolveDocker resolves "docker://NAME|ID" through the Docker Engine API
// at $DOCKER_HOST: the container's init process, or the layers of a
// container that is not running (Process.Stopped).
func ResolveDocker(ctx context.Context, r Ref) (Process, error) {
	in, err := NewDockerClient(os.Getenv("DOCKER_HOST")).inspect(ctx, r.Name)
	if err != nil {
		return Process{}, err
	}
	if !in.running() {
		return dockerStopped(r.Name, in) // stopped.go
	}
	return Process{PID: in.State.Pid, Description: "docker container " + r.Name}, CheckAlive(in.State.Pid)
}

// pfKthread is the kernel's PF_KTHREAD flag in /proc/PID/stat.
const pfKthread = 0x00200000

// checkProcess refuses a PID that names a thread rather than a process, or
// a kernel thread (it has no namespaces of its own to debug).
func checkProcess(pid int) error {
	p := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(p + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
				if tgid := strings.TrimSpace(v); tgid != strconv.Itoa(pid) {
					return fmt.Errorf("%w: %d is a thread of process %s, not a process: use pid:%s", ErrInvalid, pid, tgid, tgid)
				}
			}
		}
	}
	b, err := os.ReadFile(p + "/stat")
	if err != nil {
		return nil // CheckAlive says it
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	if f := strings.Fields(string(b[i+1:])); len(f) > 6 {
		if flags, err := strconv.ParseUint(f[6], 10, 64); err == nil && flags&pfKthread != 0 {
			name := string(b[bytes.IndexByte(b, '(')+1 : i])
			return fmt.Errorf("%w: %d (%s) is a kernel thread, which runs in the host's namespaces: to debug the host, use pid:1 with --profile sysadmin", ErrInvalid, pid, name)
		}
	}
	return nil
}

// CheckAlive returns ErrNotFound unless pid is a live (non-zombie) process.
func CheckAlive(pid int) error {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return fmt.Errorf("%w: no process with PID %d: check the PID with ps", ErrNotFound, pid)
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
		return fmt.Errorf("%w: process %d has exited (zombie): pick a running process", ErrNotFound, pid)
	}
	return nil
}
