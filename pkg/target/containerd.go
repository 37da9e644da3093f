package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	containers "github.com/containerd/containerd/api/services/containers/v1"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
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
// finding a container and its task's PID. It speaks gRPC on the daemon's
// unix socket without containerd's client library.
type ContainerdClient struct {
	address string

	mu       sync.Mutex
	first    net.Conn   // dialed before gRPC starts, handed to its first dial
	dialErr  error      // the last error dialing the socket
	lastCode codes.Code // the code of the last failed call
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
	return SocketDown(c.dialErr) || c.lastCode == codes.DeadlineExceeded
}

func (c *ContainerdClient) dial(ctx context.Context, _ string) (net.Conn, error) {
	c.mu.Lock()
	first := c.first
	c.first = nil
	c.mu.Unlock()
	if first != nil {
		return first, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.address)
	c.mu.Lock()
	c.dialErr = err
	c.mu.Unlock()
	return conn, err
}

// InitPID finds the container nameOrID in namespace ns (by ID, by its
// nerdctl/name label, or by a unique ID prefix) and returns its full ID and
// the host PID of its running task.
func (c *ContainerdClient) InitPID(ctx context.Context, ns, nameOrID string) (id string, pid int, err error) {
	ctx, cancel := context.WithTimeout(ctx, containerdTimeout)
	defer cancel()
	if IsFullID(nameOrID) {
		// The common case, a running container by its full ID: one call on
		// a bare HTTP/2 connection. No answer, or no such task (a name may
		// look like an ID), takes the general way below.
		var resp tasks.GetResponse
		err := h2Unary(ctx, c.address, ns, taskGetMethod, &tasks.GetRequest{ContainerID: nameOrID}, &resp)
		if _, answered := status.FromError(err); answered && status.Code(err) != codes.NotFound {
			pid, err := c.taskAnswer(ns, nameOrID, &resp, err)
			return nameOrID, pid, err
		}
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = conn.Close() }()
	ctx = metadata.AppendToOutgoingContext(ctx, "containerd-namespace", ns)
	tc := tasks.NewTasksClient(conn)
	// A running container named by its ID takes one call. The containers a
	// name or an ID prefix may mean are listed meanwhile (containerd filters
	// the list, so it stays small), but for a full ID: a second stream on
	// the connection costs containerd a filtered scan and the client a
	// goroutine, which the common case never needs.
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	listed := make(chan listing, 1)
	list := func() { listed <- listContainers(lctx, containers.NewContainersClient(conn), nameOrID) }
	full := IsFullID(nameOrID)
	if !full {
		go list()
	}
	if pid, err := c.taskPID(ctx, tc, ns, nameOrID); !errors.Is(err, errNoTask) {
		return nameOrID, pid, err
	}
	if full {
		list() // a nerdctl name may look like an ID
	}
	l := <-listed
	if l.err != nil {
		return "", 0, c.apiError(l.err)
	}
	if id, err = l.pick(ns, nameOrID); err != nil {
		return "", 0, err
	}
	pid, err = c.taskPID(ctx, tc, ns, id)
	if errors.Is(err, errNoTask) {
		return "", 0, &notRunningError{ns: ns, id: id, state: "created, with no task",
			err: fmt.Errorf("%w: containerd container %s/%s is not running (it has no task): start it first", ErrNotFound, ns, id)}
	}
	return id, pid, err
}

// connect returns a gRPC connection to containerd. A socket that is
// missing or refuses says so at once (ErrUnreachable), without gRPC's
// retries.
func (c *ContainerdClient) connect(ctx context.Context) (*grpc.ClientConn, error) {
	first, err := c.dial(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("%w: connecting to containerd at %s: %w (is containerd running? set CONTAINERD_ADDRESS)", ErrUnreachable, c.address, err)
	}
	c.mu.Lock()
	c.first = first
	c.mu.Unlock()
	conn, err := grpc.NewClient("passthrough:///containerd",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(c.dial))
	if err != nil {
		_ = first.Close()
		return nil, fmt.Errorf("connecting to containerd at %s: %w", c.address, err)
	}
	return conn, nil
}

// errNoTask is taskPID's answer for a container with no task, or no
// container of that ID at all.
var errNoTask = errors.New("no task")

// taskGetMethod is the gRPC method of tasks.TasksClient.Get.
const taskGetMethod = "/containerd.services.tasks.v1.Tasks/Get"

// taskPID returns the host PID of container id's running task.
func (c *ContainerdClient) taskPID(ctx context.Context, tc tasks.TasksClient, ns, id string) (int, error) {
	resp, err := tc.Get(ctx, &tasks.GetRequest{ContainerID: id})
	return c.taskAnswer(ns, id, resp, err)
}

// taskAnswer is taskPID's reading of containerd's answer to Get.
func (c *ContainerdClient) taskAnswer(ns, id string, resp *tasks.GetResponse, err error) (int, error) {
	if status.Code(err) == codes.NotFound {
		return 0, errNoTask
	}
	if err != nil {
		return 0, c.apiError(err)
	}
	p := resp.GetProcess()
	if p.GetStatus() != tasktypes.Status_RUNNING || p.GetPid() == 0 {
		state := strings.ToLower(p.GetStatus().String())
		return 0, &notRunningError{ns: ns, id: id, state: taskState(state, p.GetExitStatus(), p.GetExitedAt().AsTime()),
			err: fmt.Errorf("%w: containerd container %s/%s is %s, not running: start it first", ErrNotFound, ns, id, state)}
	}
	return int(p.GetPid()), nil
}

// listing is the IDs and nerdctl names of the containers a reference may
// mean.
type listing struct {
	ids, names []string
	err        error
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

// listContainers lists the containers whose ID begins with nameOrID or
// whose nerdctl/name label it is, one container per message so that a node
// with many containers does not hit gRPC's message size limit. A
// containerd that refuses the filters lists every container.
func listContainers(ctx context.Context, cc containers.ContainersClient, nameOrID string) listing {
	filters := []string{
		"id~=" + strconv.Quote("^"+regexp.QuoteMeta(nameOrID)),
		"labels." + strconv.Quote(NerdctlNameLabel) + "==" + strconv.Quote(nameOrID),
	}
	l := streamContainers(ctx, cc, filters)
	if status.Code(l.err) == codes.InvalidArgument {
		l = streamContainers(ctx, cc, nil)
	}
	return l
}

func streamContainers(ctx context.Context, cc containers.ContainersClient, filters []string) listing {
	stream, err := cc.ListStream(ctx, &containers.ListContainersRequest{Filters: filters})
	if err != nil {
		return listing{err: err}
	}
	var l listing
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return l
		}
		if err != nil {
			return listing{err: err}
		}
		l.ids = append(l.ids, m.GetContainer().GetID())
		l.names = append(l.names, m.GetContainer().GetLabels()[NerdctlNameLabel])
	}
}

// apiError turns a gRPC error into one line: unreachable when the socket
// did not answer, else what containerd said.
func (c *ContainerdClient) apiError(err error) error {
	st := status.Convert(err)
	c.mu.Lock()
	dialErr := c.dialErr
	c.lastCode = st.Code()
	c.mu.Unlock()
	switch {
	case dialErr != nil:
		return fmt.Errorf("%w: connecting to containerd at %s: %w (is containerd running? set CONTAINERD_ADDRESS)", ErrUnreachable, c.address, dialErr)
	case st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded:
		return fmt.Errorf("%w: containerd at %s did not answer: %s (is containerd running? set CONTAINERD_ADDRESS)", ErrUnreachable, c.address, st.Message())
	default:
		return fmt.Errorf("%w: containerd at %s answered %s: %s", ErrUnreachable, c.address, st.Code(), st.Message())
	}
}
