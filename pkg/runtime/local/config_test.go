package local

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func withProfile(t *testing.T, name string, c spec.Container) spec.Container {
	t.Helper()
	p, err := profile.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(&c, profile.Ephemeral); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContainerConfig(t *testing.T) {
	img := &image.Image{Config: v1.Config{
		Entrypoint: []string{"/entry"}, Cmd: []string{"run"}, Env: []string{"PATH=/bin", "A=image"},
		WorkingDir: "/srv", User: "app",
	}}
	tests := []struct {
		name string
		c    spec.Container
		want initConfig
	}{
		{
			name: "image defaults under general",
			c:    withProfile(t, "general", spec.Container{}),
			want: initConfig{Argv: []string{"/entry", "run"}, Env: []string{"PATH=/bin", "A=image"}, WorkingDir: "/srv",
				User: "app", Caps: []int{0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 19, 27, 29, 31}, NoNewPrivs: true},
		},
		{
			name: "flags override",
			c: spec.Container{Command: []string{"sh"}, Env: []spec.EnvVar{{Name: "A", Value: "flag"}}, WorkingDir: "/",
				User: "0:0", Stdin: true, TTY: true},
			want: initConfig{Argv: []string{"sh"}, Env: []string{"PATH=/bin", "A=flag"}, WorkingDir: "/",
				User: "0:0", Caps: []int{0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}, NoNewPrivs: true, Stdin: true, TTY: true},
		},
		{
			name: "restricted",
			c:    withProfile(t, "restricted", spec.Container{User: "1000"}),
			want: initConfig{Argv: []string{"/entry", "run"}, Env: []string{"PATH=/bin", "A=image"}, WorkingDir: "/srv",
				User: "1000", Caps: []int{}, NoNewPrivs: true, RunAsNonRoot: true, Seccomp: true},
		},
		{
			name: "netadmin",
			c:    withProfile(t, "netadmin", spec.Container{}),
			want: initConfig{Argv: []string{"/entry", "run"}, Env: []string{"PATH=/bin", "A=image"}, WorkingDir: "/srv",
				User: "app", Caps: []int{0, 1, 3, 4, 5, 6, 7, 8, 10, 12, 13, 18, 27, 29, 31}, NoNewPrivs: true},
		},
		{
			name: "run as user and group",
			c:    spec.Container{Security: spec.Security{RunAsUser: ptr(int64(7)), RunAsGroup: ptr(int64(8))}},
			want: initConfig{Argv: []string{"/entry", "run"}, Env: []string{"PATH=/bin", "A=image"}, WorkingDir: "/srv",
				User: "7:8", Caps: []int{0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}, NoNewPrivs: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := containerConfig(tt.c, img, nil)
			if err != nil {
				t.Fatal(err)
			}
			sort.Ints(got.Caps)
			if diff := cmp.Diff(&tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSysadminHasAllCapabilities(t *testing.T) {
	c := withProfile(t, "sysadmin", spec.Container{})
	got, err := containerConfig(c, &image.Image{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Caps) != lastCap()+1 || got.NoNewPrivs || !got.Privileged {
		t.Errorf("sysadmin: %d capabilities, no_new_privs %v, privileged %v", len(got.Caps), got.NoNewPrivs, got.Privileged)
	}
}

func TestUnknownCapability(t *testing.T) {
	c := spec.Container{Security: spec.Security{AddCapabilities: []string{"TELEPORT"}}}
	if _, err := containerConfig(c, &image.Image{}, nil); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("unknown capability: %v, want ErrInvalidSpec", err)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := lookPath("tool", "/nonexistent:"+dir); err != nil || got != exe {
		t.Errorf("lookPath(tool) = %q, %v", got, err)
	}
	if _, err := lookPath("data", dir); err == nil {
		t.Error("lookPath found a non-executable file")
	}
	if _, err := lookPath("nope", dir); err == nil {
		t.Error("lookPath found a missing file")
	}
	if got, err := lookPath(exe, ""); err != nil || got != exe {
		t.Errorf("lookPath(absolute) = %q, %v", got, err)
	}
}

func TestEnvironment(t *testing.T) {
	got := environment(&initConfig{Env: []string{"A=1"}, TTY: true}, "/root")
	want := map[string]bool{"A=1": true, "PATH=" + defaultPath: true, "HOME=/root": true, "TERM=xterm": true}
	for _, e := range got {
		delete(want, e)
	}
	if len(want) > 0 {
		t.Errorf("environment %q lacks %v", got, want)
	}
	got = environment(&initConfig{Env: []string{"PATH=/x", "HOME=/h", "HOSTNAME=n"}}, "/root")
	if diff := cmp.Diff([]string{"PATH=/x", "HOME=/h", "HOSTNAME=n"}, got); diff != "" {
		t.Errorf("image values must win (-want +got):\n%s", diff)
	}
}

func TestJoinSpec(t *testing.T) {
	o := &openTarget{ns: []string{"user", "ipc", "uts", "net", "pid"}}
	if got, want := o.joinSpec(4), "user:4,ipc:5,uts:6,net:7,pid:8"; got != want {
		t.Errorf("joinSpec = %q, want %q", got, want)
	}
}

func TestHostID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "uid_map")
	if err := os.WriteFile(p, []byte("         0     100000      65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, ok := hostID(p); !ok || n != 100000 {
		t.Errorf("hostID = %d, %v", n, ok)
	}
}

func ptr[T any](v T) *T { return &v }
