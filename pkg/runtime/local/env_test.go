package local

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParseEnviron(t *testing.T) {
	in := "A=1\x00PATH=/target/bin\x00B=x=y\x00noequals\x00=novalue\x00EMPTY=\x00"
	want := []string{"A=1", "B=x=y", "EMPTY="}
	if diff := cmp.Diff(want, parseEnviron([]byte(in))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := parseEnviron(nil); len(got) != 0 {
		t.Errorf("an empty environ gave %q", got)
	}
}

func TestDebugEnvPrecedence(t *testing.T) {
	tests := []struct {
		name          string
		target, image []string
		vars          []spec.EnvVar
		want          []string
	}{
		{"image only", nil, []string{"PATH=/bin", "A=image"}, nil, []string{"PATH=/bin", "A=image"}},
		{"-e overrides the image in place", nil, []string{"PATH=/bin", "A=image"}, []spec.EnvVar{{Name: "A", Value: "flag"}, {Name: "C", Value: "c"}},
			[]string{"PATH=/bin", "A=flag", "C=c"}},
		{"the image overrides the target, -e both", []string{"A=target", "B=target", "HOME=/app"}, []string{"PATH=/bin", "A=image"},
			[]spec.EnvVar{{Name: "B", Value: "flag"}},
			[]string{"A=image", "B=flag", "HOME=/app", "PATH=/bin"}},
		{"-e sets PATH", []string{"A=target"}, []string{"PATH=/bin"}, []spec.EnvVar{{Name: "PATH", Value: "/opt"}},
			[]string{"A=target", "PATH=/opt"}},
		{"the last -e wins", nil, nil, []spec.EnvVar{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}}, []string{"A=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, debugEnv(tt.target, tt.image, tt.vars)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerConfigEnvFromTarget(t *testing.T) {
	img := &image.Image{Config: v1.Config{Env: []string{"PATH=/bin", "A=image"}}}
	c := spec.Container{EnvFromTarget: true, Env: []spec.EnvVar{{Name: "B", Value: "flag"}}}
	cfg, err := containerConfig(c, img, []string{"A=target", "B=target", "APP=1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"A=image", "B=flag", "APP=1", "PATH=/bin"}, cfg.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

// startWithEnv starts sleep with exactly env and returns its PID.
func startWithEnv(t *testing.T, env []string) int {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		if strings.Contains(err.Error(), "argument list too long") {
			t.Skipf("this kernel refuses so large an environment: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Start returns once execve has begun; the new image's environment is
	// in /proc a moment later (until then it reads empty).
	environ := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/environ"
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(environ); err == nil && len(b) > 0 {
			break
		}
	}
	return cmd.Process.Pid
}

func TestTargetEnv(t *testing.T) {
	pid := startWithEnv(t, []string{"APP_MODE=debug me", "PATH=/target/only", "MULTI=a\nb"})
	got, err := targetEnv(pid)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"APP_MODE=debug me", "MULTI=a\nb"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTargetEnvTooLarge(t *testing.T) {
	var env []string
	for i := range 10 {
		env = append(env, "V"+string(rune('A'+i))+"="+strings.Repeat("x", 120<<10))
	}
	pid := startWithEnv(t, env)
	if _, err := targetEnv(pid); !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), "-e") {
		t.Fatalf("error %v, want ErrInvalidSpec suggesting -e", err)
	}
}

func TestTargetEnvGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := targetEnv(cmd.Process.Pid); !errors.Is(err, runtime.ErrTargetGone) {
		t.Fatalf("error %v, want ErrTargetGone", err)
	}
}
