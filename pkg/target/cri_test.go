package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestParseCRI(t *testing.T) {
	for _, c := range []struct {
		in, ns, name, ctr string
		bad               string
	}{
		{in: "0123abcd", name: "0123abcd"},
		{in: "default/web", ns: "default", name: "web"},
		{in: "kube-system/coredns-1.a/coredns", ns: "kube-system", name: "coredns-1.a", ctr: "coredns"},
		{in: "", bad: "missing container ID"},
		{in: "Web", bad: "lowercase hex"},
		{in: "a/b/c/d", bad: "too many '/'"},
		{in: "Default/web", bad: "not a Kubernetes namespace"},
		{in: "default/-web", bad: "not a pod name"},
		{in: "default/web/a.b", bad: "not a container name"},
		{in: "default//c", bad: "not a pod name"},
	} {
		var r Ref
		err := ParseCRI(&r, c.in)
		switch {
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("ParseCRI(%q) = %v, want an error saying %q", c.in, err, c.bad)
		case c.bad == "" && err != nil:
			t.Errorf("ParseCRI(%q): %v", c.in, err)
		case c.bad == "" && (r.Namespace != c.ns || r.Name != c.name || r.Container != c.ctr):
			t.Errorf("ParseCRI(%q) = %q %q %q, want %q %q %q", c.in, r.Namespace, r.Name, r.Container, c.ns, c.name, c.ctr)
		}
	}
}

// fakeCRI is a CRI runtime service with fixed sandboxes and containers;
// running containers' pid is this test process.
type fakeCRI struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	sandboxes  []*runtimeapi.PodSandbox
	containers []*runtimeapi.Container
}

func (f *fakeCRI) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "fake", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeCRI) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	var out []*runtimeapi.PodSandbox
	for _, sb := range f.sandboxes {
		if st := req.GetFilter().GetState(); st == nil || st.GetState() == sb.GetState() {
			out = append(out, sb)
		}
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

func (f *fakeCRI) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		fl := req.GetFilter()
		match := (fl.GetPodSandboxId() == "" || fl.GetPodSandboxId() == c.GetPodSandboxId()) &&
			(fl.GetState() == nil || fl.GetState().GetState() == c.GetState())
		for k, v := range fl.GetLabelSelector() {
			match = match && c.GetLabels()[k] == v
		}
		if match {
			out = append(out, c)
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func (f *fakeCRI) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	for _, c := range f.containers {
		if c.GetId() == req.GetContainerId() {
			info := map[string]string{}
			if c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING && req.GetVerbose() {
				info["info"] = fmt.Sprintf(`{"sandboxID":%q,"pid":%d}`, c.GetPodSandboxId(), os.Getpid())
			}
			return &runtimeapi.ContainerStatusResponse{
				Status: &runtimeapi.ContainerStatus{Id: c.GetId(), Metadata: c.GetMetadata(), State: c.GetState()},
				Info:   info,
			}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "an error occurred when try to find container %q: not found", req.GetContainerId())
}

// serveCRI serves srv (nil: no runtime service) on a new socket and
// returns its path.
func serveCRI(t *testing.T, srv runtimeapi.RuntimeServiceServer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cri.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	if srv != nil {
		runtimeapi.RegisterRuntimeServiceServer(s, srv)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return path
}

func id64(prefix string) string { return prefix + strings.Repeat("0", 64-len(prefix)) }

func sandbox(id, ns, name string, st runtimeapi.PodSandboxState) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{Id: id, State: st, Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns}}
}

func ctr(id, sb, name string, st runtimeapi.ContainerState) *runtimeapi.Container {
	return &runtimeapi.Container{Id: id, PodSandboxId: sb, State: st, Metadata: &runtimeapi.ContainerMetadata{Name: name}}
}

// kubeletCtr is ctr with the labels the kubelet gives its containers.
func kubeletCtr(id, sb, ns, pod, name string, st runtimeapi.ContainerState) *runtimeapi.Container {
	c := ctr(id, sb, name, st)
	c.Labels = map[string]string{criPodNamespaceLabel: ns, criPodNameLabel: pod, criContainerLabel: name}
	return c
}

// newFakeCRI has pod default/web of the kubelet (its containers labelled),
// and pods default/multi and default/old of crictl (not labelled).
func newFakeCRI() *fakeCRI {
	run, exited := runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED
	ready, notReady := runtimeapi.PodSandboxState_SANDBOX_READY, runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	return &fakeCRI{
		sandboxes: []*runtimeapi.PodSandbox{
			sandbox("sb1", "default", "web", ready),
			sandbox("sb2", "default", "multi", ready),
			sandbox("sb3", "default", "old", notReady),
			sandbox("sb4", "kube", "two", ready),
		},
		containers: []*runtimeapi.Container{
			kubeletCtr(id64("aa11"), "sb1", "default", "web", "web", run),
			kubeletCtr(id64("aa10"), "sb1", "default", "web", "init", exited),
			ctr(id64("bb"), "sb2", "one", run),
			ctr(id64("cc"), "sb2", "two", run),
			ctr(id64("dd"), "sb3", "gone", exited),
			kubeletCtr(id64("e1"), "sb4", "kube", "two", "a", run),
			kubeletCtr(id64("e2"), "sb4", "kube", "two", "b", run),
		},
	}
}

func TestResolveCRI(t *testing.T) {
	t.Setenv(EnvCRIEndpoint, "unix://"+serveCRI(t, newFakeCRI()))
	ctx := context.Background()
	for _, c := range []struct {
		ref  string
		err  error
		says string
	}{
		{ref: "cri://default/web", says: "CRI container default/web/web (aa1100000000) on unix://"},
		{ref: "cri://default/web/web", says: "default/web/web"},
		{ref: "cri://default/multi/two", says: "default/multi/two (cc0000000000)"},
		{ref: "cri://aa11", says: "CRI container aa1100000000"},
		{ref: "cri://" + id64("bb"), says: "CRI container bb0000000000"},
		{ref: "cri://kube/two", err: ErrInvalid, says: "pod kube/two runs 2 containers: name one: cri://kube/two/a, cri://kube/two/b"},
		{ref: "cri://kube/two/b", says: "CRI container kube/two/b (e20000000000)"},
		{ref: "cri://kube/two/c", err: ErrNotFound, says: `pod kube/two has no running container "c"`},
		{ref: "cri://default/multi", err: ErrInvalid, says: "pod default/multi runs 2 containers: name one: cri://default/multi/one, cri://default/multi/two"},
		{ref: "cri://aa1", err: ErrInvalid, says: `"aa1" begins the IDs of 2 CRI containers: use one of cri://` + id64("aa10")},
		{ref: "cri://ee", err: ErrNotFound, says: `no container whose ID begins with "ee"`},
		{ref: "cri://" + id64("ee"), err: ErrNotFound, says: "has no container " + id64("ee") + " (gone?)"},
		{ref: "cri://aa10", err: ErrNotFound, says: "CRI container aa1000000000 is exited, not running"},
		{ref: "cri://default/nope", err: ErrNotFound, says: "runs no pod default/nope: list them with crictl pods"},
		{ref: "cri://default/old/gone", err: ErrNotFound, says: "runs no pod default/old"},
		{ref: "cri://default/web/init", err: ErrNotFound, says: `pod default/web has no running container "init"`},
	} {
		r, err := Parse(c.ref)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.ref, err)
		}
		p, err := ResolveCRI(ctx, r)
		switch {
		case c.err == nil && (err != nil || p.PID != os.Getpid() || !strings.Contains(p.Description, c.says)):
			t.Errorf("%s: %+v, %v; want our PID and a description with %q", c.ref, p, err, c.says)
		case c.err != nil && (!errors.Is(err, c.err) || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%s: %v; want %v saying %q", c.ref, err, c.err, c.says)
		}
	}
}

func TestCRIEndpoints(t *testing.T) {
	ctx := context.Background()
	ref, err := Parse("cri://default/web")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvCRIEndpoint, "tcp://127.0.0.1:1")
	if _, err := ResolveCRI(ctx, ref); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "is not a unix socket") {
		t.Errorf("a tcp endpoint: %v, want ErrInvalid", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.sock")
	t.Setenv(EnvCRIEndpoint, missing)
	_, err = ResolveCRI(ctx, ref)
	if !errors.Is(err, ErrUnreachable) || !SocketDown(err) || !strings.Contains(err.Error(), "connecting to the CRI runtime at unix://"+missing) {
		t.Errorf("a missing socket: %v, want ErrUnreachable naming it", err)
	}
	// A socket that does not speak gRPC fails at once, not at the timeout.
	notGRPC := filepath.Join(t.TempDir(), "http.sock")
	l, err := net.Listen("unix", notGRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			_ = conn.Close()
		}
	}()
	t.Setenv(EnvCRIEndpoint, notGRPC)
	start := time.Now()
	if _, err := ResolveCRI(ctx, ref); !errors.Is(err, ErrUnreachable) || time.Since(start) > criProbeTimeout {
		t.Errorf("a socket that is not gRPC: %v after %v, want ErrUnreachable at once", err, time.Since(start))
	}
	t.Setenv(EnvCRIEndpoint, missing)
	// A full ID without a runtime: searched in /proc, and the runtime's
	// error kept.
	ref, _ = Parse("cri://" + id64("fe"))
	if _, err = ResolveCRI(ctx, ref); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no process in /proc belongs to container") {
		t.Errorf("a full ID without a runtime: %v", err)
	}

	// Unset: the first usual socket that answers Version is used.
	t.Setenv(EnvCRIEndpoint, "")
	old := DefaultCRIEndpoints
	t.Cleanup(func() { DefaultCRIEndpoints = old })
	notCRI, fake := serveCRI(t, nil), serveCRI(t, newFakeCRI())
	DefaultCRIEndpoints = []string{"unix://" + missing, "unix://" + notCRI, "unix://" + fake}
	ref, _ = Parse("cri://default/web")
	if p, err := ResolveCRI(ctx, ref); err != nil || !strings.HasSuffix(p.Description, "on unix://"+fake) {
		t.Errorf("the usual sockets: %+v, %v; want the fake runtime's", p, err)
	}
	DefaultCRIEndpoints = []string{"unix://" + missing, "unix://" + notCRI}
	_, err = ResolveCRI(ctx, ref)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no CRI runtime answers on this host") ||
		!strings.Contains(err.Error(), notCRI+" does not answer CRI's Version") {
		t.Errorf("no usual socket answers: %v", err)
	}
}

func TestFindCRIName(t *testing.T) {
	t.Setenv(EnvCRIEndpoint, serveCRI(t, newFakeCRI()))
	ctx := context.Background()
	for name, want := range map[string]string{
		"two":  "cri://default/multi/two",
		"aa11": "cri://" + id64("aa11"),
		"init": "", // exited
		"nope": "",
	} {
		got, err := findCRIName(ctx, name)
		if err != nil {
			t.Fatalf("findCRIName(%q): %v", name, err)
		}
		var refs []string
		for _, c := range got {
			refs = append(refs, c.ref)
		}
		if strings.Join(refs, " ") != want {
			t.Errorf("findCRIName(%q) = %q, want %q", name, refs, want)
		}
	}
}

// BenchmarkResolveCRI times resolving a cri:// reference: the reference in
// $EPHEM_BENCH_CRI_REF on the runtime at $CONTAINER_RUNTIME_ENDPOINT when
// set (a real runtime), else cri://default/web on the fake one.
func BenchmarkResolveCRI(b *testing.B) {
	ref := os.Getenv("EPHEM_BENCH_CRI_REF")
	if ref == "" {
		path := filepath.Join(b.TempDir(), "cri.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		s := grpc.NewServer()
		runtimeapi.RegisterRuntimeServiceServer(s, newFakeCRI())
		go func() { _ = s.Serve(l) }()
		b.Cleanup(s.Stop)
		b.Setenv(EnvCRIEndpoint, path)
		ref = "cri://default/web/web"
	}
	r, err := Parse(ref)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := ResolveCRI(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
