package target_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	_ "github.com/ephem-dev/ephem/pkg/runtime/backends" // the registered forms
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    target.Ref
		wantErr string
	}{
		{in: "pid:4242", want: target.Ref{Scheme: "pid", Name: "4242", Raw: "pid:4242"}},
		{in: "docker://web", want: target.Ref{Scheme: "docker", Name: "web", Raw: "docker://web"}},
		{in: "docker://0123abcd", want: target.Ref{Scheme: "docker", Name: "0123abcd", Raw: "docker://0123abcd"}},
		{in: "containerd://web", want: target.Ref{Scheme: "containerd", Name: "web", Raw: "containerd://web"}},
		{in: "containerd://k8s.io/0123abcd", want: target.Ref{Scheme: "containerd", Namespace: "k8s.io", Name: "0123abcd", Raw: "containerd://k8s.io/0123abcd"}},
		{in: "containerd://a/b/c", wantErr: "no '/'"},
		{in: "", wantErr: "empty target"},
		{in: "pid:", wantErr: "positive decimal"},
		{in: "pid:-3", wantErr: "positive decimal"},
		{in: "pid:0", wantErr: "positive decimal"},
		{in: "pid:012", wantErr: "positive decimal"},
		{in: "pid:12x", wantErr: "positive decimal"},
		{in: "4242", wantErr: "write a process as pid:4242"},
		{in: "0", wantErr: "not all digits"},
		{in: "web", want: target.Ref{Scheme: "name", Name: "web", Raw: "web"}},
		{in: "web-1.blue_2", want: target.Ref{Scheme: "name", Name: "web-1.blue_2", Raw: "web-1.blue_2"}},
		{in: "0123abcd", want: target.Ref{Scheme: "name", Name: "0123abcd", Raw: "0123abcd"}},
		{in: "web app", wantErr: "only letters, digits"},
		{in: "-web", wantErr: "begins with a letter or digit"},
		{in: "web:80", wantErr: "unknown scheme"},
		{in: "a/b", wantErr: "unknown scheme"},
		{in: "docker://", wantErr: "missing container name"},
		{in: "docker://a/b", wantErr: "no '/'"},
		{in: "lxc://x", wantErr: "unknown scheme; supported: pid:4242, docker://NAME|ID, containerd://[NAMESPACE/]ID|NAME, podman://[USER/]NAME|ID, cri://ID|NAMESPACE/POD[/CONTAINER], image://REF, pod/NAME[/CONTAINER], k8s://[NAMESPACE/]POD[/CONTAINER], deploy/NAME, sts/NAME, ds/NAME, rs/NAME, job/NAME, node/NAME, NAME"},
		{in: "pod/web", want: target.Ref{Scheme: "pod", Name: "web", Raw: "pod/web"}},
		{in: "po/web/app", want: target.Ref{Scheme: "pod", Name: "web", Container: "app", Raw: "po/web/app"}},
		{in: "k8s://web", want: target.Ref{Scheme: "pod", Name: "web", Raw: "k8s://web"}},
		{in: "k8s://shop/web", want: target.Ref{Scheme: "pod", Namespace: "shop", Name: "web", Raw: "k8s://shop/web"}},
		{in: "k8s://shop/web/app", want: target.Ref{Scheme: "pod", Namespace: "shop", Name: "web", Container: "app", Raw: "k8s://shop/web/app"}},
		{in: "deploy/nginx", want: target.Ref{Scheme: "deployment", Name: "nginx", Raw: "deploy/nginx"}},
		{in: "deployments/nginx", want: target.Ref{Scheme: "deployment", Name: "nginx", Raw: "deployments/nginx"}},
		{in: "sts/db", want: target.Ref{Scheme: "statefulset", Name: "db", Raw: "sts/db"}},
		{in: "ds/agent", want: target.Ref{Scheme: "daemonset", Name: "agent", Raw: "ds/agent"}},
		{in: "rs/web-1", want: target.Ref{Scheme: "replicaset", Name: "web-1", Raw: "rs/web-1"}},
		{in: "job/batch", want: target.Ref{Scheme: "job", Name: "batch", Raw: "job/batch"}},
		{in: "node/worker-1", want: target.Ref{Scheme: "node", Name: "worker-1", Raw: "node/worker-1"}},
		{in: "pod/", wantErr: "missing pod name"},
		{in: "pod/Web", wantErr: "lowercase"},
		{in: "pod/a/b/c", wantErr: "too many"},
		{in: "pod/web/App_1", wantErr: "container name"},
		{in: "deploy/", wantErr: "missing name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := target.Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, target.ErrInvalid) {
					t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	target.Register(target.Scheme{Name: "podtest", Prefixes: []string{"podtest/"}, Example: "podtest/NAME",
		Parse: func(r *target.Ref, rest string) error { r.Name = rest; return nil }})
	got, err := target.Parse("podtest/web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Scheme != "podtest" || got.Name != "web" || got.Form() != "podtest/" {
		t.Errorf("got %+v (form %q)", got, got.Form())
	}
	if !strings.Contains(target.Supported(), "podtest/NAME") {
		t.Errorf("Supported() = %q lacks the new scheme", target.Supported())
	}
	if _, err := target.Resolve(context.Background(), got); !errors.Is(err, target.ErrInvalid) {
		t.Errorf("Resolve of a scheme without a resolver = %v, want ErrInvalid", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a taken prefix did not panic")
		}
	}()
	target.Register(target.Scheme{Name: "again", Prefixes: []string{"podtest/"}})
}

func TestCheckAlive(t *testing.T) {
	if err := target.CheckAlive(1); err != nil {
		t.Errorf("CheckAlive(1) = %v", err)
	}
	if err := target.CheckAlive(1 << 30); !errors.Is(err, target.ErrNotFound) {
		t.Errorf("CheckAlive(huge) = %v, want ErrNotFound", err)
	}
}
