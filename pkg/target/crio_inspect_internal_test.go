package target

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeCRIO is fakeCRI answering Version as CRI-O and counting verbose
// ContainerStatus calls.
type fakeCRIO struct {
	*fakeCRI
	verbose atomic.Int32
}

func (f *fakeCRIO) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: criRuntimeCRIO, RuntimeApiVersion: "v1"}, nil
}

func (f *fakeCRIO) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if req.GetVerbose() {
		f.verbose.Add(1)
	}
	return f.fakeCRI.ContainerStatus(ctx, req)
}

// serveCRIO serves CRI (gRPC over HTTP/2) and CRI-O's inspect endpoint
// (HTTP/1.1) on one socket, as CRI-O does; inspect answers the PID of
// each container ID, 404 for others.
func serveCRIO(t *testing.T, f *fakeCRIO, inspect map[string]int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crio.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(gs, f)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				gs.ServeHTTP(w, r)
				return
			}
			pid, ok := inspect[strings.TrimPrefix(r.URL.Path, "/containers/")]
			if r.Method != http.MethodGet || !ok {
				http.Error(w, "can't find the container", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"name":"x","pid":%d,"sandbox":"sb"}`, pid)
		})}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	return path
}

// crioCgroup starts a process in a cgroup named crio-ID, as CRI-O's
// cgroupfs driver makes, and returns its PID (skipping the test where no
// cgroup hierarchy is writable).
func crioCgroup(t *testing.T, id string) int {
	t.Helper()
	var dir string
	for _, root := range cgroupRoots {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		d := filepath.Join(root, "ephem-unit-"+strconv.Itoa(os.Getpid()), "crio-"+id)
		if err := os.MkdirAll(d, 0o755); err == nil {
			dir = d
			t.Cleanup(func() { _ = os.Remove(d); _ = os.Remove(filepath.Dir(d)) })
			break
		}
	}
	if dir == "" {
		t.Skip("no writable cgroup hierarchy (needs root)")
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Skipf("moving a process into a cgroup: %v", err)
	}
	return cmd.Process.Pid
}

func TestResolveCRIOInspect(t *testing.T) {
	ctx := context.Background()
	web := id64("aa11")
	f := &fakeCRIO{fakeCRI: newFakeCRI()}
	// The inspect endpoint's PID is used when it is a live process in the
	// container's own cgroup.
	pid := crioCgroup(t, web)
	t.Setenv(EnvCRIEndpoint, "unix://"+serveCRIO(t, f, map[string]int{web: pid}))
	p, err := ResolveCRI(ctx, Ref{Scheme: "cri", Namespace: "default", Name: "web"})
	if err != nil || p.PID != pid || f.verbose.Load() != 0 {
		t.Fatalf("ResolveCRI = %+v, %v (%d verbose statuses); want PID %d from the inspect endpoint", p, err, f.verbose.Load(), pid)
	}
	// A PID outside the container's cgroup, or no answer: ContainerStatus's.
	for name, inspect := range map[string]map[string]int{
		"another cgroup": {web: os.Getppid()},
		"not found":      {},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeCRIO{fakeCRI: newFakeCRI()}
			t.Setenv(EnvCRIEndpoint, "unix://"+serveCRIO(t, f, inspect))
			p, err := ResolveCRI(ctx, Ref{Scheme: "cri", Namespace: "default", Name: "web"})
			if err != nil || p.PID != os.Getpid() || f.verbose.Load() != 1 {
				t.Errorf("ResolveCRI = %+v, %v (%d verbose statuses); want PID %d from the verbose status", p, err, f.verbose.Load(), os.Getpid())
			}
		})
	}
}
