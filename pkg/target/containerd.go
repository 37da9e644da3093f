package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SchemeContainerd is the scheme of "containerd://[NAMESPACE/]ID|NAME".
const SchemeContainerd = "containerd"

// Defaults of ctr's conventions for finding containerd.
const (
	// DefaultContainerdAddress is used when $CONTAINERD_ADDRESS is empty.
	DefaultContainerdAddress = "/run/containerd/containerd.sock"
	// DefaultContainerdNamespace is used when neither the reference nor
	// $CONTAINERD_NAMESPACE names one.
	DefaultContainerdNamespace = "default"
	// NerdctlNameLabel holds a container's name as nerdctl gives it.
	NerdctlNameLabel = "nerdctl/name"
)

// containerdTimeout bounds the whole conversation with containerd.
const containerdTimeout = 10 * time.Second

// ParseContainerd is the Parse of "containerd://[NAMESPACE/]ID|NAME".
func ParseContainerd(r *Ref, rest string) error {
	ns, name, ok := strings.Cut(rest, "/")
	if !ok {
		ns, name = "", rest
	} else if !validContainerdNamespace(ns) {
		return fmt.Errorf("%q is not a containerd namespace (letters, digits, '.', '_' and '-')", ns)
	}
	if err := ParseContainer(r, name); err != nil {
		return err
	}
	r.Namespace = ns
	return nil
}

// validContainerdNamespace reports whether ns is a containerd identifier.
func validContainerdNamespace(ns string) bool {
	if ns == "" || len(ns) > 76 {
		return false
	}
	return strings.IndexFunc(ns, func(c rune) bool {
		return (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-'
	}) < 0
}

// ResolveContainerd resolves "containerd://[NAMESPACE/]ID|NAME" through
// containerd's API at $CONTAINERD_ADDRESS: the host PID of the container's
// task, or its snapshot's layers when it has no running task. When
// containerd does not answer, a full container ID is still found from /proc
// (see FindContainerProcess).
func ResolveContainerd(ctx context.Context, r Ref) (Process, error) {
	ns := r.Namespace
	if ns == "" {
		ns = os.Getenv("CONTAINERD_NAMESPACE")
		if ns != "" && !validContainerdNamespace(ns) {
			return Process{}, fmt.Errorf("%w: CONTAINERD_NAMESPACE=%q is not a containerd namespace (letters, digits, '.', '_' and '-')", ErrInvalid, ns)
		}
	}
	if ns == "" {
		ns = DefaultContainerdNamespace
	}
	c := NewContainerdClient(os.Getenv("CONTAINERD_ADDRESS"))
	defer c.Close()
	id, pid, err := c.InitPID(ctx, ns, r.Name)
	var nr *notRunningError
	if errors.As(err, &nr) {
		return c.containerdStopped(ctx, nr) // stopped.go
	}
	if err != nil {
		if c.Down() && IsFullID(r.Name) {
			return resolveWithoutAPI(err, "containerd container "+ns+"/"+r.Name, r.Name, ContainerdRuntime(ns))
		}
		return Process{}, err
	}
	return Process{PID: pid, Description: "containerd container " + ns + "/" + id}, CheckAlive(pid)
}

// ContainerdClient is the subset of containerd's gRPC API ephem uses:
// finding a container, its task's PID, and a stopped container's
// snapshot. It speaks gRPC on the daemon's unix socket, over one HTTP/2
// connection (h2Client), without containerd's client library.
type ContainerdClient struct {
	address string
	h2      *h2Client // nil until connect

	mu       sync.Mutex
	dialErr  error   // the error dialing the socket
	lastCode rpcCode // the code of the last failed call
}

// NewContainerdClient returns a client for the socket at address, a
// $CONTAINERD_ADDRESS value (a path, or unix://PATH).
func NewContainerdClient(address string) *ContainerdClient {
	address = strings.TrimPrefix(address, "unix://")
	if address == "" {
		address = DefaultContainerdAddress
	}
	return &ContainerdClient{address: address}
}

// Down reports whether the last call failed because containerd's socket
// did not answer: missing, refused, or silent until the timeout.
func (c *ContainerdClient) Down() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return SocketDown(c.dialErr) || c.lastCode == codeDeadlineExceeded
}

// connect dials containerd's socket unless it did. A socket that is
// missing or refuses says so at once (ErrUnreachable).
func (c *ContainerdClient) connect(ctx context.Context) error {
	if c.h2 != nil {
		return nil
	}
	var d net.Dialer
	first, err := d.DialContext(ctx, "unix", c.address)
	if err != nil {
		c.mu.Lock()
		c.dialErr = err
		c.mu.Unlock()
		return fmt.Errorf("%w: connecting to containerd at %s: %w (is containerd running? set CONTAINERD_ADDRESS)", ErrUnreachable, c.address, err)
	}
	c.h2 = newH2Client(c.address, first, containerdMaxMsg)
	return nil
}

// containerdMaxMsg bounds one answer of containerd's: a node's container
// list, streamed whole, can outgrow gRPC's 4 MiB default.
const containerdMaxMsg = 16 << 20

// Close closes the connection, if any.
func (c *ContainerdClient) Close() {
	if c.h2 != nil {
		c.h2.close()
	}
}

// InitPID finds the container nameOrID in namespace ns (by ID, by its
// nerdctl/name label, or by a unique ID prefix) and returns its full ID and
// the host PID of its running task.
func (c *ContainerdClient) InitPID(ctx context.Context, ns, nameOrID string) (id string, pid int, err error) {
	ctx, cancel := context.WithTimeout(ctx, containerdTimeout)
	defer cancel()
	if err := c.connect(ctx); err != nil {
		return "", 0, err
	}
	// A running container named by its ID takes one call. The containers a
	// name or an ID prefix may mean are listed in the same round trip
	// (containerd filters the list, so it stays small), but for a full ID:
	// listing costs containerd a filtered scan, which the common case
	// never needs.
	get := taskGetCall(ns, nameOrID)
	calls := []*h2Call{get}
	var list *h2Call
	if !IsFullID(nameOrID) {
		list = listCall(ns, nameOrID, true)
		calls = append(calls, list)
	}
	c.h2.batch(ctx, calls...)
	if pid, err := c.taskAnswer(ns, nameOrID, get); !errors.Is(err, errNoTask) {
		return nameOrID, pid, err
	}
	l, err := c.listing(ctx, ns, nameOrID, list) // a nerdctl name may look like an ID
	if err != nil {
		return "", 0, c.apiError(err)
	}
	if id, err = l.pick(ns, nameOrID); err != nil {
		return "", 0, err
	}
	get = taskGetCall(ns, id)
	c.h2.batch(ctx, get)
	pid, err = c.taskAnswer(ns, id, get)
	if errors.Is(err, errNoTask) {
		return "", 0, &notRunningError{ns: ns, id: id, state: "created, with no task",
			err: fmt.Errorf("%w: containerd container %s/%s is not running (it has no task): start it first", ErrNotFound, ns, id)}
	}
	return id, pid, err
}

// Namespaces lists containerd's namespaces.
func (c *ContainerdClient) Namespaces(ctx context.Context) ([]string, error) {
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	var nss ctrdNamespaces
	call := &h2Call{method: namespaceListMethod, resp: &nss}
	if c.h2.batch(ctx, call); call.err != nil {
		return nil, c.apiError(call.err)
	}
	return nss, nil
}

// ContainerdContainer is a containerd container as listed: its ID, its
// nerdctl name (or ""), and its image.
type ContainerdContainer struct{ ID, Name, Image string }

// Containers lists the containers of namespace ns.
func (c *ContainerdClient) Containers(ctx context.Context, ns string) ([]ContainerdContainer, error) {
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	list := listCall(ns, "", false)
	if c.h2.batch(ctx, list); list.err != nil {
		return nil, c.apiError(list.err)
	}
	var out []ContainerdContainer
	for _, ctr := range *list.resp.(*ctrdContainerList) {
		out = append(out, ContainerdContainer{ID: ctr.id, Name: ctr.labels[NerdctlNameLabel], Image: ctr.image})
	}
	return out, nil
}

// errNoTask is taskAnswer's answer for a container with no task, or no
// container of that ID at all.
var errNoTask = errors.New("no task")

// containerd's methods ephem calls.
const (
	taskGetMethod        = "/containerd.services.tasks.v1.Tasks/Get"
	containerGetMethod   = "/containerd.services.containers.v1.Containers/Get"
	containerListMethod  = "/containerd.services.containers.v1.Containers/ListStream"
	namespaceListMethod  = "/containerd.services.namespaces.v1.Namespaces/List"
	snapshotMountsMethod = "/containerd.services.snapshots.v1.Snapshots/Mounts"
)

// taskGetCall is Tasks.Get of container id's task.
func taskGetCall(ns, id string) *h2Call {
	return &h2Call{ns: ns, method: taskGetMethod, req: ctrdIDReq(id), resp: new(ctrdProcess)}
}

// taskAnswer is the host PID of the running task of container id, from
// containerd's answer to taskGetCall.
func (c *ContainerdClient) taskAnswer(ns, id string, call *h2Call) (int, error) {
	if rpcCodeOf(call.err) == codeNotFound {
		return 0, errNoTask
	}
	if call.err != nil {
		return 0, c.apiError(call.err)
	}
	p := call.resp.(*ctrdProcess)
	if p.status != ctrdTaskRunning || p.pid == 0 {
		state := ctrdStatusName(p.status)
		return 0, &notRunningError{ns: ns, id: id, state: taskState(state, uint32(p.exitStatus), p.exitedAt),
			err: fmt.Errorf("%w: containerd container %s/%s is %s, not running: start it first", ErrNotFound, ns, id, state)}
	}
	return int(p.pid), nil
}

// listing is the IDs and nerdctl names of the containers a reference may
// mean.
type listing struct {
	ids, names []string
}

// pick returns the ID of the container nameOrID names: the container with
// that ID, else the one whose nerdctl/name label it is, else the one whose
// ID it begins.
func (l listing) pick(ns, nameOrID string) (string, error) {
	var byID, byName, byPrefix []string
	for i, id := range l.ids {
		switch {
		case id == nameOrID:
			byID = append(byID, id)
		case l.names[i] == nameOrID:
			byName = append(byName, id)
		case strings.HasPrefix(id, nameOrID):
			byPrefix = append(byPrefix, id)
		}
	}
	for _, match := range [][]string{byID, byName, byPrefix} {
		switch {
		case len(match) == 1:
			return match[0], nil
		case len(match) > 1:
			sort.Strings(match)
			refs := make([]string, len(match))
			for i, id := range match {
				refs[i] = "containerd://" + ns + "/" + id
			}
			return "", fmt.Errorf("%w: %q names %d containerd containers in namespace %s: use one of %s",
				ErrInvalid, nameOrID, len(match), ns, strings.Join(refs, ", "))
		}
	}
	return "", fmt.Errorf("%w: containerd has no container %q in namespace %s: list them with ctr -n %s containers ls (another namespace is containerd://NAMESPACE/%s)",
		ErrNotFound, nameOrID, ns, ns, nameOrID)
}

// listCall lists the containers of namespace ns, one container per
// message so that a node with many does not hit a message size limit:
// with filters, those whose ID begins with nameOrID or whose
// nerdctl/name label it is.
func listCall(ns, nameOrID string, filter bool) *h2Call {
	var filters []string
	if filter {
		filters = []string{
			"id~=" + strconv.Quote("^"+regexp.QuoteMeta(nameOrID)),
			"labels." + strconv.Quote(NerdctlNameLabel) + "==" + strconv.Quote(nameOrID),
		}
	}
	return &h2Call{ns: ns, method: containerListMethod, req: ctrdListReq(filters), resp: new(ctrdContainerList), stream: true}
}

// listing is the answer of list, or (when nil) of a new listCall, made
// again without filters if containerd refuses them.
func (c *ContainerdClient) listing(ctx context.Context, ns, nameOrID string, list *h2Call) (listing, error) {
	if list == nil {
		list = listCall(ns, nameOrID, true)
		c.h2.batch(ctx, list)
	}
	if rpcCodeOf(list.err) == codeInvalidArgument {
		list = listCall(ns, nameOrID, false)
		c.h2.batch(ctx, list)
	}
	if list.err != nil {
		return listing{}, list.err
	}
	var l listing
	for _, ctr := range *list.resp.(*ctrdContainerList) {
		l.ids = append(l.ids, ctr.id)
		l.names = append(l.names, ctr.labels[NerdctlNameLabel])
	}
	return l, nil
}

// apiError turns a gRPC error into one line: unreachable when the socket
// did not answer, else what containerd said.
func (c *ContainerdClient) apiError(err error) error {
	code, msg := rpcStatus(err)
	c.mu.Lock()
	dialErr := c.dialErr
	c.lastCode = code
	c.mu.Unlock()
	switch {
	case dialErr != nil:
		return fmt.Errorf("%w: connecting to containerd at %s: %w (is containerd running? set CONTAINERD_ADDRESS)", ErrUnreachable, c.address, dialErr)
	case code == codeUnavailable || code == codeDeadlineExceeded:
		return fmt.Errorf("%w: containerd at %s did not answer: %s (is containerd running? set CONTAINERD_ADDRESS)", ErrUnreachable, c.address, msg)
	default:
		return fmt.Errorf("%w: containerd at %s answered %s: %s", ErrUnreachable, c.address, code, msg)
	}
}
