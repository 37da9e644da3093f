package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
)

var _ runtime.TargetCompleter = (*Engine)(nil)

// completeTimeout bounds a whole completion: every runtime is asked at
// once, and one that has not answered by then is left out.
const completeTimeout = 80 * time.Millisecond

// maxCompleteAnswer bounds what completion reads of one runtime's answer.
const maxCompleteAnswer = 4 << 20

// completionSchemes are the local reference prefixes completion offers
// when the word is still shorter than one.
var completionSchemes = []runtime.Completion{
	{Value: "pid:", Description: "a host process by PID"},
	{Value: "docker://", Description: "a Docker container"},
	{Value: "podman://", Description: "a podman container"},
	{Value: "containerd://", Description: "a containerd container"},
	{Value: "cri://", Description: "a CRI container"},
	{Value: "image://", Description: "a stopped image's filesystem"},
}

// completionSource lists one runtime's targets as full references.
type completionSource struct {
	scheme string // the prefix it answers for: "docker://"
	list   func(ctx context.Context) ([]runtime.Completion, error)
}

// CompleteTargets implements runtime.TargetCompleter: the scheme prefixes
// while the word is shorter than one, host processes as pid:N (with their
// command names) once it starts with pid:, and the running Docker, podman
// and containerd containers by name, also as a bare NAME. Every runtime is
// asked concurrently within completeTimeout; one that fails or is slow is
// left out silently.
func (e *Engine) CompleteTargets(ctx context.Context, toComplete string) ([]runtime.Completion, error) {
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	var out []runtime.Completion
	for _, s := range completionSchemes {
		if strings.HasPrefix(s.Value, toComplete) && s.Value != toComplete {
			out = append(out, s)
		}
	}
	var asked []completionSource
	for _, s := range completionSources() {
		if strings.HasPrefix(toComplete, s.scheme) || !strings.Contains(toComplete, ":") && s.scheme != "pid:" {
			asked = append(asked, s)
		}
	}
	seen := map[string]bool{}
	for _, c := range gather(ctx, asked) {
		switch {
		case strings.HasPrefix(c.Value, toComplete):
			out = append(out, c)
		case !strings.Contains(toComplete, ":"):
			// A bare NAME, looked up in every runtime (and every
			// containerd namespace).
			_, name, ok := strings.Cut(c.Value, "://")
			name = name[strings.LastIndexByte(name, '/')+1:]
			if ok && name != "" && strings.HasPrefix(name, toComplete) && !seen[name] {
				seen[name] = true
				out = append(out, runtime.Completion{Value: name, Description: c.Description})
			}
		}
	}
	return out, nil
}

// completionSources returns this host's runtimes, found where their own
// tools find them.
func completionSources() []completionSource {
	return []completionSource{
		{scheme: "pid:", list: listProcesses},
		{scheme: "docker://", list: func(ctx context.Context) ([]runtime.Completion, error) {
			return listEngine(ctx, os.Getenv("DOCKER_HOST"), "docker")
		}},
		{scheme: "podman://", list: listPodman},
		{scheme: "containerd://", list: func(ctx context.Context) ([]runtime.Completion, error) {
			return listContainerd(ctx, os.Getenv("CONTAINERD_ADDRESS"))
		}},
	}
}

// gather runs every source concurrently and returns what answered before
// ctx ended, sorted by value.
func gather(ctx context.Context, sources []completionSource) []runtime.Completion {
	var (
		mu  sync.Mutex
		out []runtime.Completion
		wg  sync.WaitGroup
	)
	done := make(chan struct{})
	for _, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := s.list(ctx)
			if err != nil || ctx.Err() != nil {
				return
			}
			mu.Lock()
			out = append(out, cs...)
			mu.Unlock()
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	res := append([]runtime.Completion(nil), out...)
	sort.Slice(res, func(i, j int) bool { return res[i].Value < res[j].Value })
	return res
}

// listProcesses lists this host's user processes (not kernel threads) as
// pid:N with their command names.
func listProcesses(ctx context.Context) ([]runtime.Completion, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []runtime.Completion
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue // gone meanwhile
		}
		if ppid := parentPID(e.Name()); ppid == 2 || pid == 2 {
			continue // a kernel thread
		}
		out = append(out, runtime.Completion{Value: "pid:" + e.Name(), Description: strings.TrimSpace(string(comm))})
	}
	return out, nil
}

// parentPID returns the parent of /proc/pid, 0 when unknown.
func parentPID(pid string) int {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields
	// after its last ')' are "state ppid ...".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// listEngine lists the running containers of a Docker Engine API (Docker's,
// or podman's compatible one) at host, a DOCKER_HOST value, as
// scheme://NAME with their images.
func listEngine(ctx context.Context, host, scheme string) ([]runtime.Completion, error) {
	if host == "" {
		host = target.DefaultDockerHost
	}
	base, tr := "http://engine", &http.Transport{}
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	case strings.HasPrefix(host, "tcp://"):
		base = "http://" + strings.TrimPrefix(host, "tcp://")
	default:
		return nil, fmt.Errorf("listing %s containers: unsupported host %q", scheme, host)
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/containers/json", nil)
	if err != nil {
		return nil, fmt.Errorf("listing %s containers: %w", scheme, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("listing %s containers: %w", scheme, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("listing %s containers: %s", scheme, resp.Status)
	}
	var list []struct {
		Names []string
		Image string
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxCompleteAnswer)).Decode(&list); err != nil {
		return nil, fmt.Errorf("decoding %s's container list: %w", scheme, err)
	}
	var out []runtime.Completion
	for _, c := range list {
		for _, n := range c.Names {
			n = strings.TrimPrefix(n, "/")
			if n != "" && !strings.Contains(n, "/") {
				out = append(out, runtime.Completion{Value: scheme + "://" + n, Description: scheme + " container, " + c.Image})
			}
		}
	}
	return out, nil
}

// listContainerd lists the containers of every containerd namespace at
// address as containerd://NAMESPACE/NAME (nerdctl's name) or /ID.
func listContainerd(ctx context.Context, address string) ([]runtime.Completion, error) {
	address = strings.TrimPrefix(address, "unix://")
	if address == "" {
		address = target.DefaultContainerdAddress
	}
	if _, err := os.Stat(address); err != nil {
		return nil, fmt.Errorf("listing containerd containers: %w", err)
	}
	c := target.NewContainerdClient(address)
	defer c.Close()
	nss, err := c.Namespaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing containerd namespaces: %w", err)
	}
	var out []runtime.Completion
	for _, ns := range nss {
		if ns == "moby" {
			continue // Docker's own: docker:// names them
		}
		ctrs, err := c.Containers(ctx, ns)
		if err != nil {
			return nil, fmt.Errorf("listing containerd containers: %w", err)
		}
		for _, ctr := range ctrs {
			name := ctr.Name
			if name == "" {
				name = ctr.ID
			}
			out = append(out, runtime.Completion{Value: "containerd://" + ns + "/" + name, Description: "containerd container, " + ctr.Image})
		}
	}
	return out, nil
}

// listPodman lists podman's containers from its storages, as podman://
// resolves them (no podman service needed): podman://NAME, or
// podman://USER/NAME for a name that several storages hold.
func listPodman(context.Context) ([]runtime.Completion, error) {
	all := target.PodmanContainers()
	count := map[string]int{}
	for _, c := range all {
		count[c.Name]++
	}
	out := make([]runtime.Completion, 0, len(all))
	for _, c := range all {
		v := "podman://" + c.Name
		if count[c.Name] > 1 {
			v = c.Ref
		}
		state := "stopped"
		if c.Running {
			state = "running"
		}
		out = append(out, runtime.Completion{Value: v, Description: "podman container (" + state + "), " + c.Ref})
	}
	return out, nil
}
