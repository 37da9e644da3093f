package target_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	containers "github.com/containerd/containerd/api/services/containers/v1"
	namespaces "github.com/containerd/containerd/api/services/namespaces/v1"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ephem-dev/ephem/pkg/target"
)

// fakeContainerd serves the containers, tasks and namespaces calls ephem
// makes, for the containers of namespace "test" (any other namespace is
// empty).
type fakeContainerd struct {
	containers.UnimplementedContainersServer
	ctrs  []*containers.Container
	tasks map[string]*tasktypes.Process
}

func namespaceOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("containerd-namespace"); len(v) == 1 {
		return v[0]
	}
	return ""
}

func (f *fakeContainerd) Get(ctx context.Context, req *containers.GetContainerRequest) (*containers.GetContainerResponse, error) {
	if namespaceOf(ctx) == "test" {
		for _, c := range f.ctrs {
			if c.ID == req.ID {
				return &containers.GetContainerResponse{Container: c}, nil
			}
		}
	}
	return nil, status.Errorf(codes.NotFound, "container %q: not found", req.ID)
}

func (f *fakeContainerd) ListStream(_ *containers.ListContainersRequest, s containers.Containers_ListStreamServer) error {
	if namespaceOf(s.Context()) != "test" {
		return nil
	}
	for _, c := range f.ctrs {
		if err := s.Send(&containers.ListContainerMessage{Container: c}); err != nil {
			return err
		}
	}
	return nil
}

// fakeNamespaces lists the namespaces "default" (empty) and "test".
type fakeNamespaces struct {
	namespaces.UnimplementedNamespacesServer
}

func (fakeNamespaces) List(context.Context, *namespaces.ListNamespacesRequest) (*namespaces.ListNamespacesResponse, error) {
	return &namespaces.ListNamespacesResponse{Namespaces: []*namespaces.Namespace{{Name: "default"}, {Name: "test"}}}, nil
}

type fakeTasks struct {
	tasks.UnimplementedTasksServer
	f *fakeContainerd
}

func (t fakeTasks) Get(_ context.Context, req *tasks.GetRequest) (*tasks.GetResponse, error) {
	p, ok := t.f.tasks[req.ContainerID]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no running task found: task %s not found", req.ContainerID)
	}
	return &tasks.GetResponse{Process: p}, nil
}

// startFakeContainerd serves a fake containerd on a unix socket and
// returns the socket's path.
func startFakeContainerd(t *testing.T) string {
	t.Helper()
	pid := uint32(os.Getpid())
	f := &fakeContainerd{
		ctrs: []*containers.Container{
			{ID: "aaaa1111", Labels: map[string]string{target.NerdctlNameLabel: "web"}},
			{ID: "aaaa2222"},
			{ID: "bbbb3333", Labels: map[string]string{target.NerdctlNameLabel: "idle"}},
			{ID: "cccc4444", Labels: map[string]string{target.NerdctlNameLabel: "stopped"}},
		},
		tasks: map[string]*tasktypes.Process{
			"aaaa1111": {Pid: pid, Status: tasktypes.Status_RUNNING},
			"aaaa2222": {Pid: pid, Status: tasktypes.Status_RUNNING},
			"cccc4444": {Pid: 0, Status: tasktypes.Status_STOPPED},
		},
	}
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	containers.RegisterContainersServer(srv, f)
	tasks.RegisterTasksServer(srv, fakeTasks{f: f})
	namespaces.RegisterNamespacesServer(srv, fakeNamespaces{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return sock
}

func TestParseContainerd(t *testing.T) {
	for _, tc := range []struct {
		in       string
		ns, name string
		bad      bool
	}{
		{in: "containerd://web", name: "web"},
		{in: "containerd://k8s.io/0123abcd", ns: "k8s.io", name: "0123abcd"},
		{in: "containerd://", bad: true},
		{in: "containerd://ns/", bad: true},
		{in: "containerd:///web", bad: true},
		{in: "containerd://n s/web", bad: true},
		{in: "containerd://a/b/c", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var r target.Ref
			err := target.ParseContainerd(&r, strings.TrimPrefix(tc.in, "containerd://"))
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseContainerd(%q) = %+v, want an error", tc.in, r)
				}
				return
			}
			if err != nil || r.Namespace != tc.ns || r.Name != tc.name {
				t.Errorf("ParseContainerd(%q) = %+v, %v; want namespace %q name %q", tc.in, r, err, tc.ns, tc.name)
			}
		})
	}
}

func TestContainerdInitPID(t *testing.T) {
	c := target.NewContainerdClient("unix://" + startFakeContainerd(t))
	ctx := context.Background()
	for _, tc := range []struct {
		ns, ref string
		id      string
		err     error
		says    []string
	}{
		{ns: "test", ref: "aaaa2222", id: "aaaa2222"},
		{ns: "test", ref: "web", id: "aaaa1111"},
		{ns: "test", ref: "bbbb", err: target.ErrNotFound, says: []string{"not running", "test/bbbb3333"}},
		{ns: "test", ref: "idle", err: target.ErrNotFound, says: []string{"not running"}},
		{ns: "test", ref: "stopped", err: target.ErrNotFound, says: []string{"stopped, not running"}},
		{ns: "test", ref: "aaaa", err: target.ErrInvalid,
			says: []string{"containerd://test/aaaa1111, containerd://test/aaaa2222"}},
		{ns: "test", ref: "nope", err: target.ErrNotFound, says: []string{`no container "nope" in namespace test`, "ctr -n test containers ls"}},
		{ns: "other", ref: "web", err: target.ErrNotFound, says: []string{"namespace other"}},
	} {
		t.Run(tc.ns+"/"+tc.ref, func(t *testing.T) {
			id, pid, err := c.InitPID(ctx, tc.ns, tc.ref)
			if tc.err == nil {
				if err != nil || id != tc.id || pid != os.Getpid() {
					t.Fatalf("InitPID = %q, %d, %v; want %q, %d", id, pid, err, tc.id, os.Getpid())
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("InitPID = %v, want %v", err, tc.err)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestResolveContainerd(t *testing.T) {
	sock := startFakeContainerd(t)
	t.Setenv("CONTAINERD_ADDRESS", sock)
	t.Setenv("CONTAINERD_NAMESPACE", "test")
	ctx := context.Background()
	p, err := target.ResolveContainerd(ctx, target.Ref{Scheme: target.SchemeContainerd, Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	want := target.Process{PID: os.Getpid(), Description: "containerd container test/aaaa1111"}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}
}

func TestContainerdUnreachable(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "none.sock")
	c := target.NewContainerdClient(missing)
	_, _, err := c.InitPID(ctx, "default", "web")
	if !errors.Is(err, target.ErrUnreachable) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "CONTAINERD_ADDRESS") {
		t.Errorf("InitPID on a missing socket = %v, want ErrUnreachable naming the socket and CONTAINERD_ADDRESS", err)
	}
	if !c.Down() {
		t.Errorf("Down() = false after a missing socket")
	}
	// A name cannot be found without the API: the unreachable error stays.
	t.Setenv("CONTAINERD_ADDRESS", missing)
	t.Setenv("CONTAINERD_NAMESPACE", "bad ns")
	if _, err := target.ResolveContainerd(ctx, target.Ref{Scheme: target.SchemeContainerd, Name: "web"}); !errors.Is(err, target.ErrInvalid) {
		t.Errorf("ResolveContainerd with CONTAINERD_NAMESPACE='bad ns' = %v, want ErrInvalid", err)
	}
	t.Setenv("CONTAINERD_NAMESPACE", "")
	_, err = target.ResolveContainerd(ctx, target.Ref{Scheme: target.SchemeContainerd, Name: "web"})
	if !errors.Is(err, target.ErrUnreachable) {
		t.Errorf("ResolveContainerd(web) without containerd = %v, want ErrUnreachable", err)
	}
	// A full ID that no process has: still unreachable, saying /proc was searched.
	id := strings.Repeat("ab", 32)
	_, err = target.ResolveContainerd(ctx, target.Ref{Scheme: target.SchemeContainerd, Name: id})
	if !errors.Is(err, target.ErrUnreachable) || !strings.Contains(err.Error(), "/proc") {
		t.Errorf("ResolveContainerd(full ID) without containerd = %v, want ErrUnreachable mentioning /proc", err)
	}
}
