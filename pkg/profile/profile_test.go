package profile_test

import (
	"errors"
	"testing"

	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func ptr[T any](v T) *T { return &v }

func TestProfiles(t *testing.T) {
	tests := []struct {
		name string
		want spec.Security
	}{
		{"general", spec.Security{AddCapabilities: []string{"SYS_PTRACE"}}},
		{"baseline", spec.Security{}},
		{"legacy", spec.Security{}},
		{"restricted", spec.Security{RunAsNonRoot: ptr(true), DropCapabilities: []string{"ALL"},
			AllowPrivilegeEscalation: ptr(false), SeccompRuntimeDefault: true}},
		{"netadmin", spec.Security{AddCapabilities: []string{"NET_ADMIN", "NET_RAW"}}},
		{"sysadmin", spec.Security{Privileged: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := profile.Get(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			var c spec.Container
			if err := p.Apply(&c, profile.Ephemeral); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Security, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeStyleHostAccess(t *testing.T) {
	want := map[string]spec.HostAccess{
		"general": {Namespaces: true, Root: true}, "sysadmin": {Namespaces: true, Root: true},
		"legacy": {Namespaces: true, Root: true}, "netadmin": {Namespaces: true},
		"baseline": {}, "restricted": {},
	}
	for name, host := range want {
		p, _ := profile.Get(name)
		var c spec.Container
		_ = p.Apply(&c, profile.Node)
		if c.Host != host {
			t.Errorf("%s on a node: %+v, want %+v", name, c.Host, host)
		}
		c = spec.Container{}
		_ = p.Apply(&c, profile.Ephemeral)
		if c.Host != (spec.HostAccess{}) {
			t.Errorf("%s in a pod: %+v, want no host access", name, c.Host)
		}
	}
}

func TestGeneralIsIdempotent(t *testing.T) {
	p, _ := profile.Get("")
	var c spec.Container
	_ = p.Apply(&c, profile.Ephemeral)
	_ = p.Apply(&c, profile.Ephemeral)
	if len(c.Security.AddCapabilities) != 1 {
		t.Errorf("general applied twice added %v", c.Security.AddCapabilities)
	}
}

func TestUnknown(t *testing.T) {
	_, err := profile.Get("root")
	if !errors.Is(err, profile.ErrUnknown) {
		t.Fatalf("Get(root) = %v, want ErrUnknown", err)
	}
	if want := `unknown profile "root": use one of baseline, general, legacy, netadmin, restricted, sysadmin`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}
