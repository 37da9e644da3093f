package target_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/pkg/target"
)

// fakeDocker serves the one Engine API call ephem makes on a unix socket.
func fakeDocker(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/containers/web/json":
			_, _ = w.Write([]byte(`{"Name":"/web","State":{"Running":true,"Pid":4242,"Status":"running"}}`))
		case "/containers/stopped/json":
			_, _ = w.Write([]byte(`{"Name":"/stopped","State":{"Running":false,"Pid":0,"Status":"exited"}}`))
		default:
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

func TestDockerInitPID(t *testing.T) {
	c := target.NewDockerClient(fakeDocker(t))
	ctx := context.Background()
	pid, err := c.InitPID(ctx, "web")
	if err != nil || pid != 4242 {
		t.Fatalf("InitPID(web) = %d, %v; want 4242", pid, err)
	}
	if _, err := c.InitPID(ctx, "nope"); !errors.Is(err, target.ErrNotFound) {
		t.Errorf("InitPID(nope) = %v, want ErrNotFound", err)
	}
	if _, err := c.InitPID(ctx, "stopped"); !errors.Is(err, target.ErrNotFound) || !strings.Contains(err.Error(), "exited") {
		t.Errorf("InitPID(stopped) = %v, want ErrNotFound saying exited", err)
	}
	down := target.NewDockerClient("unix://" + filepath.Join(t.TempDir(), "none.sock"))
	if _, err := down.InitPID(ctx, "web"); !errors.Is(err, target.ErrUnreachable) || !strings.Contains(err.Error(), "DOCKER_HOST") {
		t.Errorf("InitPID on a missing socket = %v, want ErrUnreachable naming DOCKER_HOST", err)
	}
	bad := target.NewDockerClient("ssh://host")
	if _, err := bad.InitPID(ctx, "web"); !errors.Is(err, target.ErrInvalid) {
		t.Errorf("InitPID with ssh:// = %v, want ErrInvalid", err)
	}
}
