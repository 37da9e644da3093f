package target

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
)

// Runtime names CRI's Version call answers with.
const (
	criRuntimeCRIO       = "cri-o"
	criRuntimeContainerd = "containerd"
)

// maxCRIOInspect bounds what ephem reads of CRI-O's inspect answer.
const maxCRIOInspect = 1 << 20

// runtimeName returns the name the runtime gives in its answer to
// Version ("containerd", "cri-o"), asking it unless the probe of the
// usual sockets or the lookup of a pod did; "" when it does not answer.
func (c *CRIClient) runtimeName(ctx context.Context) string {
	c.mu.Lock()
	known, name := c.named, c.name
	c.mu.Unlock()
	if known {
		return name
	}
	name, err := criVersionOf(ctx, c.h2)
	if err != nil {
		return ""
	}
	c.setName(name)
	return name
}

// knownNot reports whether the runtime is known (from the probe of the
// usual sockets) to be another than name.
func (c *CRIClient) knownNot(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.named && c.name != name
}

// setName records the runtime's name from an answer to Version.
func (c *CRIClient) setName(name string) {
	c.mu.Lock()
	c.name, c.named = name, true
	c.mu.Unlock()
}

// crioPID returns the init PID of CRI-O's container id from the inspect
// endpoint CRI-O serves on its socket beside CRI (GET /containers/ID, as
// crictl inspect's info): a small JSON, where a verbose ContainerStatus
// marshals the whole OCI spec. The request goes on the connection
// preDial made, if any. The PID must be a live process in the container's
// own cgroup (crio-ID); else 0, for the caller to ask ContainerStatus.
func (c *CRIClient) crioPID(ctx context.Context, id string) int {
	c.mu.Lock()
	path, conn := c.path, c.spare
	c.spare = nil
	c.mu.Unlock()
	if conn == nil {
		var d net.Dialer
		var err error
		if conn, err = d.DialContext(ctx, "unix", path); err != nil {
			return 0
		}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://crio/containers/"+url.PathEscape(id), nil)
	if err != nil {
		return 0
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCRIOInspect))
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0
	}
	var info struct {
		PID int `json:"pid"`
	}
	if json.Unmarshal(body, &info) != nil || info.PID <= 0 {
		return 0
	}
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(info.PID) + "/cgroup")
	if err != nil || !cgroupMatches(string(cg), CRIORuntime, id) || CheckAlive(info.PID) != nil {
		return 0
	}
	return info.PID
}

// preDial connects a second connection to the runtime's socket for
// crioPID's request, before the container is looked up (CRI-O's server
// then reads it meanwhile). A runtime other than CRI-O sees it closed
// unused, which gRPC's server passes over silently.
func (c *CRIClient) preDial(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var d net.Dialer
	if conn, err := d.DialContext(ctx, "unix", c.path); err == nil {
		c.spare = conn
	}
}

// closeSpare closes preDial's connection if crioPID did not take it.
func (c *CRIClient) closeSpare() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spare != nil {
		_ = c.spare.Close()
		c.spare = nil
	}
}
