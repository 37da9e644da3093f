package target

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// h2Tasks serves Tasks.Get from a map of namespace/ID to process.
type h2Tasks struct {
	tasks.UnimplementedTasksServer
	procs map[string]*tasktypes.Process
}

func (f h2Tasks) Get(ctx context.Context, req *tasks.GetRequest) (*tasks.GetResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	ns := strings.Join(md.Get("containerd-namespace"), ",")
	p, ok := f.procs[ns+"/"+req.ContainerID]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %q in namespace %q: not found (100%%)", req.ContainerID, ns)
	}
	return &tasks.GetResponse{Process: p}, nil
}

// startH2Tasks serves h2Tasks on a unix socket and returns its path.
func startH2Tasks(t *testing.T, procs map[string]*tasktypes.Process) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	tasks.RegisterTasksServer(srv, h2Tasks{procs: procs})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return sock
}

// h2Unary makes one unary call on a new connection to the socket at sock.
func h2Unary(ctx context.Context, sock, ns, method string, req []byte, resp pbDecoder) error {
	h := newH2Client(sock, nil, 4<<20)
	defer h.close()
	return h.call(ctx, ns, method, req, resp)
}

func TestH2Unary(t *testing.T) {
	ctx := context.Background()
	sock := startH2Tasks(t, map[string]*tasktypes.Process{
		"ns/" + idA: {Pid: 42, Status: tasktypes.Status_RUNNING},
	})
	var resp ctrdProcess
	if err := h2Unary(ctx, sock, "ns", taskGetMethod, ctrdIDReq(idA), &resp); err != nil || resp.pid != 42 {
		t.Fatalf("h2Unary(Get) = %v, pid %d; want pid 42", err, resp.pid)
	}
	err := h2Unary(ctx, sock, "other", taskGetMethod, ctrdIDReq(idA), &resp)
	if code, msg := rpcStatus(err); !serverAnswered(err) || code != codeNotFound || !strings.Contains(msg, `namespace "other": not found (100%)`) {
		t.Errorf("h2Unary(Get) in another namespace = %v, want NotFound with the server's message", err)
	}
	err = h2Unary(ctx, sock, "ns", "/containerd.services.tasks.v1.Tasks/Nope", nil, &resp)
	if rpcCodeOf(err) != codeUnimplemented {
		t.Errorf("h2Unary(unknown method) = %v, want Unimplemented", err)
	}
	// No server: no answer, so not a status the server gave.
	err = h2Unary(ctx, filepath.Join(t.TempDir(), "none.sock"), "ns", taskGetMethod, ctrdIDReq(idA), &resp)
	if serverAnswered(err) || err == nil {
		t.Errorf("h2Unary on a missing socket = %v, want one the server did not give", err)
	}
	// A socket that does not speak HTTP/2: no answer either.
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "junk.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			_ = c.Close()
		}
	}()
	err = h2Unary(ctx, l.Addr().String(), "ns", taskGetMethod, ctrdIDReq(idA), &resp)
	if serverAnswered(err) || err == nil {
		t.Errorf("h2Unary on a socket that is not HTTP/2 = %v, want one the server did not give", err)
	}
}

func TestContainerdFullID(t *testing.T) {
	ctx := context.Background()
	pid := uint32(os.Getpid())
	idC := strings.Repeat("c3", 32)
	sock := startH2Tasks(t, map[string]*tasktypes.Process{
		"ns/" + idA: {Pid: pid, Status: tasktypes.Status_RUNNING},
		"ns/" + idB: {Pid: 0, Status: tasktypes.Status_STOPPED, ExitStatus: 3},
	})
	c := NewContainerdClient(sock)
	if id, got, err := c.InitPID(ctx, "ns", idA); err != nil || id != idA || got != int(pid) {
		t.Errorf("InitPID(full ID) = %q, %d, %v; want %d", id, got, err, pid)
	}
	_, _, err := c.InitPID(ctx, "ns", idB)
	var nr *notRunningError
	if !errors.As(err, &nr) || !errors.Is(err, ErrNotFound) {
		t.Errorf("InitPID(stopped) = %v, want a notRunningError", err)
	}
	// No such task: the general way, whose listing this server does not serve.
	if _, _, err := c.InitPID(ctx, "ns", idC); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "Unimplemented") {
		t.Errorf("InitPID(unknown full ID) = %v, want the listing's error", err)
	}
}
