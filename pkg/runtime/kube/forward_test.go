package kube

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/kubernetes/fake"
)

func TestForwardPorts(t *testing.T) {
	ref := target.Ref{Scheme: target.SchemePod, Name: "web", Raw: "pod/web"}
	got, err := forwardPorts(ref, []runtime.PortPair{{Remote: 80}, {Protocol: "tcp", LocalAddr: "::1", Local: 8080, RemoteHost: "localhost", Remote: 81}})
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.PortPair{
		{Protocol: "tcp", LocalAddr: "127.0.0.1", RemoteHost: "127.0.0.1", Remote: 80},
		{Protocol: "tcp", LocalAddr: "::1", Local: 8080, RemoteHost: "127.0.0.1", Remote: 81},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		ports []runtime.PortPair
		err   error
		says  string
	}{
		{nil, runtime.ErrUsage, "at least one port"},
		{[]runtime.PortPair{{Remote: 80}, {Protocol: "udp", Remote: 53}}, runtime.ErrUnsupported, "port 53/udp: Kubernetes targets (pod/web) forward TCP only"},
		{[]runtime.PortPair{{RemoteHost: "db.local", Remote: 5432}}, runtime.ErrUsage, "IP addresses"},
		{[]runtime.PortPair{{}}, runtime.ErrUsage, "a remote port"},
	} {
		if _, err := forwardPorts(ref, tt.ports); !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%+v: error %v, want %v saying %q", tt.ports, err, tt.err, tt.says)
		}
	}
}

// TestForwardRefusals: what Forward refuses before listening or touching
// the pod.
func TestForwardRefusals(t *testing.T) {
	b := NewForClient(Options{}, clientset{fake.NewClientset(testPod("web"))}, nil, "shop")
	var log bytes.Buffer
	for _, tt := range []struct {
		ref   target.Ref
		ports []runtime.PortPair
		err   error
	}{
		{target.Ref{Scheme: target.SchemePod, Name: "web"}, []runtime.PortPair{{Protocol: "udp", Remote: 53}}, runtime.ErrUnsupported},
		{target.Ref{Scheme: target.SchemeNode, Name: "n1"}, []runtime.PortPair{{Remote: 80}}, runtime.ErrUsage},
		{target.Ref{Scheme: target.SchemePod, Name: "gone"}, []runtime.PortPair{{Remote: 80}}, target.ErrNotFound},
		// The fake client cannot open pods/portforward.
		{target.Ref{Scheme: target.SchemePod, Name: "web"}, []runtime.PortPair{{Remote: 80}}, runtime.ErrUnsupported},
	} {
		if err := b.Forward(context.Background(), tt.ref, tt.ports, &log); !errors.Is(err, tt.err) {
			t.Errorf("%s %+v: error %v, want %v", tt.ref, tt.ports, err, tt.err)
		}
	}
	if log.Len() != 0 {
		t.Errorf("a refused forward printed %q", log.String())
	}
}

func TestTrimForwardError(t *testing.T) {
	for in, want := range map[string]string{
		`error forwarding port 9999 to pod 909b, uid : failed to execute portforward in network namespace "/x": failed to connect to localhost:9999 inside namespace "909b", IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address found`: "connect: connection refused",
		"something else\n": "something else",
	} {
		if got := trimForwardError(in); got != want {
			t.Errorf("trimForwardError(%q) = %q, want %q", in, got, want)
		}
	}
}
