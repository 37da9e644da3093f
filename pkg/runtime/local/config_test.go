package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
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

// TestConfigTagsMatchC checks that the record tags and flags the Go side
// encodes are the ones cinit.h defines.
func TestConfigTagsMatchC(t *testing.T) {
	b, err := os.ReadFile("nsenter/cinit.h")
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]int{}
	for _, m := range regexp.MustCompile(`#define (C(?:FG|FLAG)_\w+) (\d+)`).FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[2])
		c[m[1]] = n
	}
	goValues := map[string]int{"CFG_ARG": cfgArg, "CFG_ENV": cfgEnv, "CFG_CWD": cfgCwd, "CFG_USER": cfgUser,
		"CFG_FLAGS": cfgFlags, "CFG_CAPS": cfgCaps, "CFG_SECCOMP": cfgSeccomp, "CFG_WINSIZE": cfgWinsize,
		"CFG_FILE": cfgFile, "CFG_TARGET": cfgTarget, "CFLAG_NONROOT": cflagNonRoot, "CFLAG_NNP": cflagNNP,
		"CFLAG_PRIVILEGED": cflagPrivileged, "CFLAG_TTY": cflagTTY, "CFLAG_STDIN": cflagStdin}
	if diff := cmp.Diff(goValues, c); diff != "" {
		t.Errorf("cinit.h and config.go disagree (-go +c):\n%s", diff)
	}
}

// TestEncodeConfig decodes what encode wrote, record by record.
func TestEncodeConfig(t *testing.T) {
	cfg := &initConfig{Argv: []string{"sh", "-c", "echo"}, Env: []string{"A=1"}, WorkingDir: "/w", User: "tool:staff",
		Caps: []int{0, 5, 40}, NoNewPrivs: true, TTY: true, Rows: 24, Cols: 80, Seccomp: true,
		Files: map[string][]byte{"etc/hosts": []byte("h"), "/etc/resolv.conf": []byte("r")}, Target: []string{"/l"}}
	b, err := cfg.encode()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("truncated record: %x", b)
		}
		n := binary.LittleEndian.Uint32(b[1:5])
		v := b[5 : 5+n]
		switch b[0] {
		case cfgFlags:
			got = append(got, fmt.Sprintf("flags=%d", binary.LittleEndian.Uint32(v)))
		case cfgCaps:
			got = append(got, fmt.Sprintf("caps=%x", binary.LittleEndian.Uint64(v)))
		case cfgSeccomp:
			got = append(got, fmt.Sprintf("seccomp=%v", len(v) > 0 && len(v)%8 == 0))
		case cfgWinsize:
			got = append(got, fmt.Sprintf("winsize=%dx%d", binary.LittleEndian.Uint16(v), binary.LittleEndian.Uint16(v[2:])))
		default:
			got = append(got, fmt.Sprintf("%d=%q", b[0], v))
		}
		b = b[5+n:]
	}
	want := []string{`1="sh"`, `1="-c"`, `1="echo"`, `2="A=1"`, `3="/w"`, `4="tool:staff"`,
		fmt.Sprintf("flags=%d", cflagNNP|cflagTTY), fmt.Sprintf("caps=%x", uint64(1|1<<5|1<<40)), "seccomp=true",
		"winsize=24x80", `9="/etc/resolv.conf\x00r"`, `9="/etc/hosts\x00h"`, `10=""`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("encoded config (-want +got):\n%s", diff)
	}
	if _, err := (&initConfig{Files: map[string][]byte{"/": nil}}).encode(); err == nil {
		t.Error("a file named / was encoded")
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
