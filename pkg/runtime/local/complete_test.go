package local

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
)

// engineOn serves a Docker Engine API's container list on a unix socket
// and returns its DOCKER_HOST.
func engineOn(t *testing.T, list string, delay time.Duration) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/containers/json" {
			http.NotFound(w, r)
			return
		}
		time.Sleep(delay)
		_, _ = w.Write([]byte(list))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

func TestCompleteTargetsDocker(t *testing.T) {
	t.Setenv("DOCKER_HOST", engineOn(t, `[{"Names":["/web"],"Image":"nginx"},{"Names":["/db","/web/alias"],"Image":"pg"}]`, 0))
	t.Setenv("CONTAINERD_ADDRESS", "/nonexistent.sock")
	e := New(Options{})
	for _, tc := range []struct {
		word string
		want []string
	}{
		{"docker://", []string{"docker://db", "docker://web"}},
		{"docker://w", []string{"docker://web"}},
		{"doc", []string{"docker://", "docker://db", "docker://web"}},
		{"we", []string{"web"}},
		{"pi", []string{"pid:"}},
		{"zzz", nil},
	} {
		cs, err := e.CompleteTargets(context.Background(), tc.word)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cs {
			got = append(got, c.Value)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("CompleteTargets(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

// A daemon slower than the bound is left out, and the answer still comes
// within it.
func TestCompleteTargetsSlowDaemon(t *testing.T) {
	t.Setenv("DOCKER_HOST", engineOn(t, `[{"Names":["/web"]}]`, 2*time.Second))
	start := time.Now()
	cs, err := New(Options{}).CompleteTargets(context.Background(), "docker://")
	if took := time.Since(start); err != nil || len(cs) != 0 || took > time.Second {
		t.Errorf("slow daemon: %v, %v after %v; want nothing within %v", cs, err, took, completeTimeout)
	}
}

func TestCompleteTargetsPID(t *testing.T) {
	self := "pid:" + strconv.Itoa(os.Getpid())
	cs, err := New(Options{}).CompleteTargets(context.Background(), self)
	if err != nil {
		t.Fatal(err)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	want := runtime.Completion{Value: self, Description: string(comm[:len(comm)-1])}
	if !slices.Contains(cs, want) {
		t.Errorf("CompleteTargets(%q) = %v, want %v among them", self, cs, want)
	}
	for _, c := range cs {
		if c.Value == "pid:2" {
			t.Errorf("kthreadd is listed: %v", c)
		}
	}
}
