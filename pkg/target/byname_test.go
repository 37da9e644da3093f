package target_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ephem-dev/ephem/pkg/target"
)

// dockerCtr is one container of fakeDockerList.
type dockerCtr struct {
	id, name string
	running  bool
}

// fakeDockerList serves the Engine API calls of a bare NAME's lookup on a
// unix socket: the container list and inspecting one container by name or
// ID. A running container's PID is this test's. With fail, every call
// answers 500. It returns the DOCKER_HOST.
func fakeDockerList(t *testing.T, fail bool, ctrs ...dockerCtr) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/json", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("all") != "1" {
			http.Error(w, `{"message":"want all=1"}`, http.StatusBadRequest)
			return
		}
		list := []map[string]any{}
		for _, c := range ctrs {
			list = append(list, map[string]any{"Id": c.id, "Names": []string{"/" + c.name}})
		}
		_ = json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("GET /containers/{ref}/json", func(w http.ResponseWriter, r *http.Request) {
		for _, c := range ctrs {
			if r.PathValue("ref") == c.name || r.PathValue("ref") == c.id {
				pid, status := 0, "exited"
				if c.running {
					pid, status = os.Getpid(), "running"
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"Name": "/" + c.name,
					"State": map[string]any{"Running": c.running, "Pid": pid, "Status": status}})
				return
			}
		}
		http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
	})
	var h http.Handler = mux
	if fail {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"message":"daemon is sick"}`, http.StatusInternalServerError)
		})
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

// The Docker containers beside startFakeContainerd's: "web" is in both,
// "lookalike"'s ID begins with containerd's aaaa2222, and "dup" has the ID
// of containerd's bbbb3333 (as Docker's containers are containerd's too).
var dockerCtrs = []dockerCtr{
	{id: "d0cc0000" + strings.Repeat("0", 56), name: "web", running: true},
	{id: "501a" + strings.Repeat("1", 60), name: "solo", running: true},
	{id: "aaaa2222" + strings.Repeat("f", 56), name: "lookalike", running: true},
	{id: "bbbb3333", name: "dup", running: true},
	{id: "e0e0" + strings.Repeat("2", 60), name: "down"},
}

// byNameCase is one lookup: the process it resolves to, or the error it
// wraps and what that error says.
type byNameCase struct {
	name string
	want target.Process
	err  error
	says []string
}

func checkByName(t *testing.T, cases []byNameCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := target.Parse(tc.name)
			if err != nil || ref.Scheme != target.SchemeName {
				t.Fatalf("Parse(%q) = %+v, %v; want a bare name", tc.name, ref, err)
			}
			got, err := target.Resolve(context.Background(), ref)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Resolve(%q): %v", tc.name, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("Resolve(%q) (-want +got):\n%s", tc.name, diff)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Resolve(%q) = %+v, %v; want %v", tc.name, got, err, tc.err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestResolveByName(t *testing.T) {
	target.HidePodmanForTest(t)
	t.Setenv("DOCKER_HOST", fakeDockerList(t, false, dockerCtrs...))
	t.Setenv("CONTAINERD_ADDRESS", startFakeContainerd(t))
	t.Setenv("CONTAINERD_NAMESPACE", "")
	pid := os.Getpid()
	checkByName(t, []byNameCase{
		{name: "solo", want: target.Process{PID: pid, Description: "docker container solo (docker://solo)", Chosen: "docker://solo"}},
		{name: "501a", want: target.Process{PID: pid, Description: "docker container solo (docker://solo)", Chosen: "docker://solo"}},
		// containerd's exact ID wins over Docker's ID prefix.
		{name: "aaaa2222", want: target.Process{PID: pid,
			Description: "containerd container test/aaaa2222 (containerd://test/aaaa2222)", Chosen: "containerd://test/aaaa2222"}},
		// One container seen by both runtimes is one candidate.
		{name: "bbbb3333", want: target.Process{PID: pid, Description: "docker container dup (docker://dup)", Chosen: "docker://dup"}},
		{name: "web", err: target.ErrInvalid, says: []string{`"web" names 2 containers`, "docker://web, containerd://test/aaaa1111"}},
		{name: "aaaa", err: target.ErrInvalid,
			says: []string{"docker://lookalike, containerd://test/aaaa1111, containerd://test/aaaa2222"}},
		{name: "nope", err: target.ErrNotFound, says: []string{`no container "nope" in docker or containerd`}},
		// Stopped, with no layers these fakes could show (stopped.go).
		{name: "down", err: target.ErrNoLayers, says: []string{"docker container down is not running"}},
		{name: "stopped", err: target.ErrNoLayers, says: []string{"test/cccc4444 is not running"}},
	})
}

func TestResolveByNameRuntimeAbsent(t *testing.T) {
	target.HidePodmanForTest(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+missing)
	t.Setenv("CONTAINERD_ADDRESS", startFakeContainerd(t))
	pid := os.Getpid()
	checkByName(t, []byNameCase{
		{name: "aaaa2222", want: target.Process{PID: pid,
			Description: "containerd container test/aaaa2222 (containerd://test/aaaa2222)", Chosen: "containerd://test/aaaa2222"}},
		{name: "solo", err: target.ErrNotFound,
			says: []string{`no container "solo" in containerd (not reachable: docker (unix://` + missing + `: no such file or directory)`}},
	})

	// A socket nothing listens on any more: refused, also skipped.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	_ = l.Close()
	t.Setenv("CONTAINERD_ADDRESS", stale)
	checkByName(t, []byNameCase{
		{name: "web", err: target.ErrNotFound, says: []string{"no container runtime on this host answers",
			"docker (unix://" + missing + ": no such file or directory)", "containerd (" + stale + ": connection refused)"}},
	})
}

func TestResolveByNameRuntimeFails(t *testing.T) {
	target.HidePodmanForTest(t)
	t.Setenv("DOCKER_HOST", fakeDockerList(t, true))
	t.Setenv("CONTAINERD_ADDRESS", startFakeContainerd(t))
	checkByName(t, []byNameCase{
		// A runtime that answers with an error is reported, even when
		// another finds the name: the name may not be unique.
		{name: "web", err: target.ErrUnreachable,
			says: []string{"searching docker", "500", "daemon is sick", "containerd://test/aaaa1111 is the only match found elsewhere"}},
		{name: "nope", err: target.ErrUnreachable, says: []string{`searching docker for "nope"`, "500"}},
		// Several matches are ambiguous whatever the other runtime says.
		{name: "aaaa", err: target.ErrInvalid, says: []string{"containerd://test/aaaa1111, containerd://test/aaaa2222"}},
	})
}

func TestNameForm(t *testing.T) {
	ref, err := target.Parse("web")
	if err != nil {
		t.Fatal(err)
	}
	if got := ref.Form(); got != "NAME" {
		t.Errorf("Form() of a bare name = %q, want NAME", got)
	}
	if s := target.Supported(); !strings.HasSuffix(s, ", NAME") {
		t.Errorf("Supported() = %q, want NAME last", s)
	}
}

func TestShortNameIsNoIDPrefix(t *testing.T) {
	t.Setenv("DOCKER_HOST", fakeDockerList(t, false))
	t.Setenv("CONTAINERD_ADDRESS", startFakeContainerd(t))
	// "aaa" begins three IDs, but three hex digits are a name, not a prefix.
	checkByName(t, []byNameCase{{name: "aaa", err: target.ErrNotFound, says: []string{`no container "aaa"`}}})
}
