package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DockerClient is the subset of the Docker Engine API ephem uses: inspecting
// a container for its init PID. It speaks plain HTTP on the daemon's unix
// socket (or tcp://, for a daemon published on loopback).
type DockerClient struct {
	host string
	http *http.Client
	base string
}

// DefaultDockerHost is used when DOCKER_HOST is empty.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// NewDockerClient returns a client for host, a DOCKER_HOST value.
func NewDockerClient(host string) *DockerClient {
	if host == "" {
		host = DefaultDockerHost
	}
	c := &DockerClient{host: host, http: &http.Client{Timeout: 10 * time.Second}, base: "http://docker"}
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
	case strings.HasPrefix(host, "tcp://"):
		c.base = "http://" + strings.TrimPrefix(host, "tcp://")
	}
	return c
}

type dockerInspect struct {
	Name  string
	State struct {
		Running    bool
		Paused     bool
		Restarting bool
		Pid        int
		Status     string
		ExitCode   int
		FinishedAt string
	}
	// GraphDriver locates a stopped container's layers (stopped.go).
	GraphDriver struct {
		Name string
		Data map[string]string
	}
}

// running says whether the container has a live init process to join.
func (in dockerInspect) running() bool { return in.State.Running && in.State.Pid > 0 }

// InitPID returns the host PID of the named container's init process.
func (c *DockerClient) InitPID(ctx context.Context, nameOrID string) (int, error) {
	in, err := c.inspect(ctx, nameOrID)
	if err != nil {
		return 0, err
	}
	if !in.running() {
		return 0, fmt.Errorf("%w: docker container %q is %s, not running: start it first", ErrNotFound, nameOrID, in.State.Status)
	}
	return in.State.Pid, nil
}

// inspect returns what the daemon says of the container nameOrID.
func (c *DockerClient) inspect(ctx context.Context, nameOrID string) (dockerInspect, error) {
	var in dockerInspect
	code, body, err := c.get(ctx, "/containers/"+url.PathEscape(nameOrID)+"/json")
	if err != nil {
		return in, err
	}
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return in, fmt.Errorf("%w: docker has no container %q: list them with docker ps -a", ErrNotFound, nameOrID)
	default:
		return in, dockerStatusError(code, body)
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return in, fmt.Errorf("decoding docker container %q: %w", nameOrID, err)
	}
	return in, nil
}

// maxDockerAnswer bounds what ephem reads of one answer of the daemon.
const maxDockerAnswer = 32 << 20

// get sends GET path to the daemon and returns the status code and body.
// A daemon that cannot be reached is ErrUnreachable.
func (c *DockerClient) get(ctx context.Context, path string) (int, []byte, error) {
	if !strings.HasPrefix(c.host, "unix://") && !strings.HasPrefix(c.host, "tcp://") {
		return 0, nil, fmt.Errorf("%w: DOCKER_HOST=%q: only unix:// and tcp:// are supported", ErrInvalid, c.host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("building docker request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: connecting to docker at %s: %w (is dockerd running? set DOCKER_HOST)", ErrUnreachable, c.host, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDockerAnswer))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: reading docker's answer: %w", ErrUnreachable, err)
	}
	return resp.StatusCode, body, nil
}

// dockerStatusError is the error of an answer ephem did not expect.
func dockerStatusError(code int, body []byte) error {
	return fmt.Errorf("%w: docker answered %d %s: %s", ErrUnreachable, code, http.StatusText(code), strings.TrimSpace(string(body)))
}

func unwrapURL(err error) error {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err
	}
	return err
}
