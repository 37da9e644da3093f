package target

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
)

// Process is a local target resolved to a running process.
type Process struct {
	// PID is the process ID in the host's PID namespace.
	PID int
	// Description names the target for messages ("docker container web").
	Description string
}

// Resolver resolves local references to processes.
type Resolver interface {
	// Resolve returns the running process r names.
	Resolve(ctx context.Context, r Ref) (Process, error)
}

// LocalResolver resolves the local schemes: pid and docker.
type LocalResolver struct {
	// Docker talks to the Docker Engine API.
	Docker *DockerClient
}

var _ Resolver = (*LocalResolver)(nil)

// NewLocalResolver returns a resolver using the environment's DOCKER_HOST.
func NewLocalResolver() *LocalResolver {
	return &LocalResolver{Docker: NewDockerClient(os.Getenv("DOCKER_HOST"))}
}

// Resolve implements Resolver.
func (l *LocalResolver) Resolve(ctx context.Context, r Ref) (Process, error) {
	switch r.Scheme {
	case "pid":
		return Process{PID: r.PID(), Description: "process " + r.Name}, CheckAlive(r.PID())
	case "docker":
		pid, err := l.Docker.InitPID(ctx, r.Name)
		if err != nil {
			return Process{}, err
		}
		return Process{PID: pid, Description: "docker container " + r.Name}, CheckAlive(pid)
	default:
		return Process{}, fmt.Errorf("%w %q: the local engine does not handle %s targets", ErrInvalid, r.Raw, r.Scheme)
	}
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
