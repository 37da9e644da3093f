package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestCRIOTarget debugs containers of a standalone CRI-O (hack/crio.sh:
// built from the module proxy, run with Debian's conmon, runc and CNI
// loopback) through its CRI socket: a pod started with crictl, by
// cri://NAMESPACE/POD/CONTAINER, by ID and ID prefix and by a bare name;
// its errors; and by full ID from /proc once CRI-O is killed. Stopping
// CRI-O leaves no process, mount or cgroup behind.
func TestCRIOTarget(t *testing.T) {
	f := setup(t)
	// CRI-O's pause image: only pulled (pods here need no infra container).
	c := startCRIO(t, f.registry, f.busybox)
	t.Setenv("CONTAINER_RUNTIME_ENDPOINT", c.endpoint)
	suffix := randomID(t)[:6]
	ns, pod, web := "crio-e2e", "srv-"+suffix, "cweb-"+suffix
	sb := c.runPod(t, ns, pod)
	webID := c.runContainer(t, sb, ns, pod, web, f.busybox,
		"mkdir -p /www && echo crio-e2e >/www/index.html && echo "+web+" >/www/marker && exec httpd -f -p 127.0.0.1:8080 -h /www")
	sideID := c.runContainer(t, sb, ns, pod, "side", f.busybox, "exec sleep 3600")
	pid := c.pid(t, webID)
	ref := "cri://" + ns + "/" + pod

	check := func(t *testing.T, target string) {
		t.Helper()
		out := f.debug(t, target, "sh", "-c", "wget -qO- 127.0.0.1:8080; cat /proc/1/root/www/marker; ls -l /proc/self/ns")
		if !strings.HasPrefix(out, "crio-e2e\n"+web+"\n") {
			t.Errorf("%s: want the pod's page from 127.0.0.1 and the container's /www/marker, got:\n%s", target, out)
		}
		got, want := parseNS(out), nsLinks(t, itoa(pid))
		for _, n := range []string{"net", "ipc", "uts", "pid"} {
			if got[n] != want[n] {
				t.Errorf("%s: the debug container's %s namespace = %s, want the container's %s", target, n, got[n], want[n])
			}
		}
		if got["mnt"] == "" || got["mnt"] == want["mnt"] {
			t.Errorf("%s: mnt namespace = %q, want one of its own (the container's is %s)", target, got["mnt"], want["mnt"])
		}
	}
	t.Run("ByPod", func(t *testing.T) { check(t, ref+"/"+web) })
	t.Run("ByID", func(t *testing.T) { check(t, "cri://"+webID) })
	t.Run("ByIDPrefix", func(t *testing.T) { check(t, "cri://"+webID[:12]) })
	t.Run("ByName", func(t *testing.T) { check(t, web) })
	t.Run("Errors", func(t *testing.T) {
		dbg := func(ref string) []string { return []string{"debug", ref, "--image", f.busybox, "--", "true"} }
		expectFailure(t, f, 64, []string{"runs 2 containers: name one: " + ref + "/" + web + ", " + ref + "/side"}, dbg(ref)...)
		expectFailure(t, f, 66, []string{"runs no pod " + ns + "/nope"}, dbg("cri://"+ns+"/nope")...)
		expectFailure(t, f, 66, []string{`has no running container "nope"`}, dbg(ref+"/nope")...)
		c.crictl(t, "rm", "-f", sideID)
		expectFailure(t, f, 66, []string{"has no container " + sideID}, dbg("cri://"+sideID)...)
	})
	t.Run("WithoutCRIO", func(t *testing.T) {
		// CRI-O killed: its conmon and the container live on.
		if err := syscall.Kill(c.pidOfCRIO, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, c.pidOfCRIO)
		r := f.ephem(t, "debug", "cri://"+webID, "--image", f.busybox, "--", "wget", "-qO-", "127.0.0.1:8080")
		if r.ExitCode != 0 || r.Stdout != "crio-e2e\n" || !strings.Contains(r.Stderr, "without the runtime's API") {
			t.Errorf("cri://ID without CRI-O: exit %d, stdout %q; want the page and a notice\nstderr: %s", r.ExitCode, r.Stdout, r.Stderr)
		}
		expectFailure(t, f, 68, []string{"connecting to the CRI runtime at " + c.endpoint}, "debug", ref+"/"+web, "--image", f.busybox, "--", "true")
	})
}

// crio is a CRI-O started by hack/crio.sh.
type crio struct {
	script, dir    string
	endpoint       string // CONTAINER_RUNTIME_ENDPOINT
	crictlPath     string
	cgroupParent   string
	pidOfCRIO      int
	logDir, config string
}

// startCRIO starts CRI-O with registry as its insecure registry and pause
// as its pause image, and stops it when t ends, checking that nothing is
// left.
func startCRIO(t *testing.T, registry, pause string) *crio {
	t.Helper()
	root, err := e2eutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ephem-crio-")
	if err != nil {
		t.Fatal(err)
	}
	c := &crio{script: filepath.Join(root, "hack", "crio.sh"), dir: dir}
	t.Cleanup(func() { c.stop(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a cold build
	defer cancel()
	r, err := e2eutil.Run(ctx, []string{"EPHEM_REGISTRY=" + registry, "EPHEM_CRIO_PAUSE_IMAGE=" + pause}, c.script, "start", dir)
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("hack/crio.sh start: %v, exit %d\n%s%s", err, r.ExitCode, r.Stdout, r.Stderr)
	}
	for _, line := range strings.Split(r.Stdout, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "CONTAINER_RUNTIME_ENDPOINT":
			c.endpoint = v
		case "CRICTL":
			c.crictlPath = v
		case "CGROUP_PARENT":
			c.cgroupParent = v
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "crio.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if c.pidOfCRIO, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || c.endpoint == "" || c.crictlPath == "" {
		t.Fatalf("hack/crio.sh start: unexpected output %q (pid file %q)", r.Stdout, b)
	}
	c.logDir, c.config = filepath.Join(dir, "pod-logs"), filepath.Join(dir, "test")
	if err := os.MkdirAll(c.config, 0o755); err != nil {
		t.Fatal(err)
	}
	return c
}

// stop stops CRI-O and checks that it left no process, mount or cgroup.
func (c *crio) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r, err := e2eutil.Run(ctx, nil, c.script, "stop", c.dir); err != nil || r.ExitCode != 0 {
		t.Errorf("hack/crio.sh stop: %v, exit %d\n%s%s", err, r.ExitCode, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("hack/crio.sh stop left %s (%v)", c.dir, err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil && strings.Contains(string(mi), c.dir) {
		t.Errorf("mounts under %s left after stop", c.dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), c.dir+"/") {
			t.Errorf("process %s left after stop: %q", filepath.Dir(p), strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	if c.cgroupParent != "" {
		if left, _ := filepath.Glob("/sys/fs/cgroup/*" + c.cgroupParent); len(left) > 0 {
			t.Errorf("cgroups left after stop: %q", left)
		}
	}
}

// crictl runs crictl on this CRI-O and returns its trimmed output.
func (c *crio) crictl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := e2eutil.Run(ctx, nil, c.crictlPath, append([]string{"--runtime-endpoint", c.endpoint, "--timeout", "2m"}, args...)...)
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("crictl %v: %v, exit %d\n%s", args, err, r.ExitCode, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// writeJSON writes v as JSON to the file name in the test's config
// directory and returns its path.
func (c *crio) writeJSON(t *testing.T, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(c.config, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// nsOptions gives a pod or container its own PID namespace (as the kubelet
// does): CRI-O then needs no infra container.
var nsOptions = map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}}

// podConfig is a pod sandbox's crictl config.
func (c *crio) podConfig(ns, name string) map[string]any {
	linux := map[string]any{"cgroup_parent": c.cgroupParent}
	for k, v := range nsOptions {
		linux[k] = v
	}
	return map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": ns, "uid": name + "-uid"},
		"log_directory": c.logDir,
		"linux":         linux,
	}
}

// runPod starts pod sandbox ns/name and returns its ID.
func (c *crio) runPod(t *testing.T, ns, name string) string {
	t.Helper()
	return c.crictl(t, "runp", c.writeJSON(t, "pod-"+name+".json", c.podConfig(ns, name)))
}

// runContainer pulls image, creates and starts container name running
// "sh -c script" in pod sandbox sb, and returns its ID.
func (c *crio) runContainer(t *testing.T, sb, ns, pod, name, image, script string) string {
	t.Helper()
	c.crictl(t, "pull", image)
	ctr := c.writeJSON(t, "ctr-"+name+".json", map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": image},
		"command":  []string{"sh", "-c", script},
		"log_path": name + ".log",
		"linux":    nsOptions,
	})
	id := c.crictl(t, "create", sb, ctr, c.writeJSON(t, "pod-"+pod+".json", c.podConfig(ns, pod)))
	c.crictl(t, "start", id)
	return id
}

// pid returns the host PID of container id, as crictl inspect says.
func (c *crio) pid(t *testing.T, id string) int {
	t.Helper()
	var v struct {
		Info struct {
			PID int `json:"pid"`
		} `json:"info"`
	}
	out := c.crictl(t, "inspect", id)
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Info.PID <= 0 {
		t.Fatalf("crictl inspect %s: no pid (%v):\n%s", id, err, out)
	}
	return v.Info.PID
}

// waitGone waits (at most 10 s) until process pid has exited and been reaped.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z") {
			return
		}
	}
	t.Fatalf("process %d still runs", pid)
}
