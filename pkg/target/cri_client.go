package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// criProbeTimeout bounds the Version call that picks one of the usual
// sockets: a socket that accepts but does not answer is passed over.
const criProbeTimeout = 2 * time.Second

// criMaxMsg is the largest message accepted from the runtime (crictl's
// limit): a node's container list can outgrow gRPC's 4 MiB default.
const criMaxMsg = 16 << 20

// CRIClient is the subset of the CRI runtime service ephem uses: finding a
// pod's containers and a container's init process. It speaks gRPC on the
// runtime's unix socket.
type CRIClient struct {
	paths    []string // sockets to try, in order
	explicit bool     // paths is $CONTAINER_RUNTIME_ENDPOINT's

	mu     sync.Mutex
	path   string // the socket that answered
	silent bool   // a call got no answer (Unavailable, DeadlineExceeded)
	h2     *h2Client

	named bool   // name is known
	name  string // the runtime's name, from Version

	spare net.Conn // preDial's connection, for crioPID
}

// NewCRIClient returns a client for endpoint, a $CONTAINER_RUNTIME_ENDPOINT
// value (a path, or unix://PATH); empty tries DefaultCRIEndpoints.
func NewCRIClient(endpoint string) (*CRIClient, error) {
	if endpoint == "" {
		c := &CRIClient{}
		for _, e := range DefaultCRIEndpoints {
			c.paths = append(c.paths, strings.TrimPrefix(e, "unix://"))
		}
		return c, nil
	}
	path := strings.TrimPrefix(endpoint, "unix://")
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%w: %s=%q is not a unix socket: write unix:///PATH or /PATH", ErrInvalid, EnvCRIEndpoint, endpoint)
	}
	return &CRIClient{paths: []string{path}, explicit: true}, nil
}

// connect connects to the first socket that answers: the one named, or the
// first usual one whose runtime answers Version. Sockets that are missing
// or refuse say so at once (ErrUnreachable), without gRPC's retries.
func (c *CRIClient) connect(ctx context.Context) error {
	var errs []error
	for _, path := range c.paths {
		err := c.try(ctx, path)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if c.explicit {
		return fmt.Errorf("%w: connecting to the CRI runtime at unix://%s: %w (is it running? set %s)",
			ErrUnreachable, c.paths[0], errs[0], EnvCRIEndpoint)
	}
	return fmt.Errorf("%w: no CRI runtime answers on this host: %w (start containerd or CRI-O, or set %s to the runtime's socket)",
		ErrUnreachable, oneLine(errs), EnvCRIEndpoint)
}

// oneLine is errors.Join on one line: its errors joined by "; ".
type oneLine []error

func (e oneLine) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e oneLine) Unwrap() []error { return e }

// try connects to the socket at path; unless it was named, its runtime
// must answer Version.
func (c *CRIClient) try(ctx context.Context, path string) error {
	var d net.Dialer
	first, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.path = path
	c.mu.Unlock()
	h := newH2Client(path, first, criMaxMsg)
	if !c.explicit {
		pctx, cancel := context.WithTimeout(ctx, criProbeTimeout)
		name, err := criVersionOf(pctx, h)
		cancel()
		if err != nil {
			h.close()
			_, msg := rpcStatus(err)
			return fmt.Errorf("%s does not answer CRI's Version: %s", path, msg)
		}
		c.setName(name)
	}
	c.h2 = h
	return nil
}

// Close closes the connection, if any.
func (c *CRIClient) Close() {
	if c.h2 != nil {
		c.h2.close()
	}
	c.closeSpare()
}

// where names the runtime's socket for messages.
func (c *CRIClient) where() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.path == "" {
		return "unix://" + strings.Join(c.paths, ", unix://")
	}
	return "unix://" + c.path
}

// Down reports whether err says the runtime's socket did not answer:
// missing, refused, or silent until the timeout.
func (c *CRIClient) Down(err error) bool {
	c.mu.Lock()
	silent := c.silent
	c.mu.Unlock()
	return errors.Is(err, ErrUnreachable) && (SocketDown(err) || silent)
}

// apiError turns a gRPC error into one line: unreachable when the runtime
// did not answer, else what it said.
func (c *CRIClient) apiError(err error) error {
	code, msg := rpcStatus(err)
	switch code {
	case codeUnavailable, codeDeadlineExceeded:
		c.mu.Lock()
		c.silent = true
		c.mu.Unlock()
		return fmt.Errorf("%w: the CRI runtime at %s did not answer: %s (is it running? set %s to a CRI runtime's socket)",
			ErrUnreachable, c.where(), msg, EnvCRIEndpoint)
	case codeUnimplemented:
		return fmt.Errorf("%w: %s does not serve the CRI API (v1): %s: set %s to a CRI runtime's socket",
			ErrUnreachable, c.where(), msg, EnvCRIEndpoint)
	}
	return fmt.Errorf("%w: the CRI runtime at %s answered %s: %s", ErrUnreachable, c.where(), code, msg)
}

// isNotFound reports whether err is the runtime's "no such container":
// gRPC's NotFound, or an Unknown whose message says so (CRI-O).
func isNotFound(err error) bool {
	code, msg := rpcStatus(err)
	msg = strings.ToLower(msg)
	return code == codeNotFound ||
		(code == codeUnknown && (strings.Contains(msg, "not found") || strings.Contains(msg, "does not exist")))
}

// criContainerdNamespace is the containerd namespace of the containers
// containerd's CRI plugin runs.
const criContainerdNamespace = "k8s.io"

// containerdTaskPID returns the PID of container id's running task when
// the CRI runtime is containerd, which serves its own API on the same
// socket: much cheaper than a verbose status, which marshals the whole
// OCI spec. Any other answer (CRI-O: Unimplemented) is 0.
func (c *CRIClient) containerdTaskPID(ctx context.Context, id string) int {
	var p ctrdProcess
	err := c.h2.call(ctx, criContainerdNamespace, taskGetMethod, ctrdIDReq(id), &p)
	if err != nil || p.status != ctrdTaskRunning {
		return 0
	}
	return int(p.pid)
}

// infoPID returns the "pid" of a container's verbose info JSON, or 0.
func infoPID(info string) int {
	var v struct {
		PID int `json:"pid"`
	}
	if json.Unmarshal([]byte(info), &v) != nil {
		return 0
	}
	return v.PID
}
