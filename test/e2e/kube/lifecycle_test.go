//go:build e2e_kube_lifecycle

package kube_test

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/test/e2e/kube"
)

// Names up.sh gives to what it creates on the host (see hack/cluster/lib.sh).
const (
	bridgeName = "ephem0"
	cgroupRoot = "ephem-cluster"
	cniNetwork = "ephem-pods"
	podPrefix  = "10.244.0."
)

// TestLifecycle runs down.sh on the running cluster (with workloads on it),
// asserts that nothing of it is left on the host, brings it up again with
// up.sh and checks that it serves a workload. It leaves the cluster up.
func TestLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Other test processes may be using the cluster: wait for them, and keep
	// new ones out until the cluster is back.
	if err := lease.Exclusive(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lease.Shared(ctx); err != nil {
			t.Error(err)
		}
	}()
	// Converting a flock is not atomic: a down.sh that was waiting may have
	// stopped the cluster meanwhile. Make sure it is up.
	c, _, err := kube.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cluster = c

	// Give down.sh something to clean: pods with volumes, netns, veths.
	// (down.sh wipes the namespace with the cluster.)
	ns, err := cluster.CreateNamespace(ctx, "lifecycle-before-down", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = cluster.DeployDistroless(ctx, ns, "pyserv"); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.DeployNginxLike(ctx, ns, "web"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, cluster.Dir)
	if len(before.pids) < 7 || len(before.netns) < 2 || len(before.mounts) == 0 || len(before.veths) < 2 {
		t.Fatalf("running cluster looks incomplete: %d processes, %d pod netns, %d mounts, %d veths",
			len(before.pids), len(before.netns), len(before.mounts), len(before.veths))
	}

	t.Logf("before down.sh: %d processes, %d pod netns, %d mounts, %d veths",
		len(before.pids), len(before.netns), len(before.mounts), len(before.veths))
	start := time.Now()
	if err := lease.Down(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("down.sh took %s", time.Since(start).Round(time.Millisecond))
	assertClean(t, cluster.Dir, before)

	start = time.Now()
	c, err = lease.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up.sh after down.sh took %s", time.Since(start).Round(time.Millisecond))
	cluster = c // new certificates: the old client no longer connects
	if err := c.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	ns = c.Namespace(t, nil)
	w, err := c.DeployDistroless(ctx, ns, "pyserv")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := c.Kubectl(ctx, "-n", ns, "debug", w.Pod.Name, "--image", c.Image("busybox"), "--target", w.Container,
		"-c", "check", "--", "wget", "-qO-", "http://localhost:80/")
	if err != nil {
		t.Fatalf("kubectl debug after up again: %v (%s)", err, out)
	}
	if _, err := c.WaitEphemeralTerminated(ctx, ns, w.Pod.Name, "check"); err != nil {
		t.Fatal(err)
	}
	if logs, _, err := c.Kubectl(ctx, "-n", ns, "logs", w.Pod.Name, "-c", "check"); err != nil || !strings.Contains(logs, kube.Reply) {
		t.Errorf("debug container after up again: %q, %v", logs, err)
	}
}

// hostState is what the running cluster holds on the host.
type hostState struct {
	pids    map[int]string // pid -> command line
	netns   map[string]bool
	mounts  []string
	veths   []string
	sysctls map[string]string // values before up.sh, from its record
	absent  []string          // host paths that did not exist before up.sh
}

func snapshot(t *testing.T, dir string) hostState {
	t.Helper()
	s := hostState{pids: map[int]string{}, netns: map[string]bool{}, sysctls: map[string]string{}}
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if cmd := cmdline(pid); strings.Contains(cmd, dir+"/") && !strings.Contains(cmd, ".test ") {
			s.pids[pid] = cmd
		}
	}
	// Pods' processes are in the kubelet's cgroups; their netns are the pods'.
	var cgroupProcs []string
	_ = filepath.WalkDir("/sys/fs/cgroup/pids/"+cgroupRoot, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			cgroupProcs = append(cgroupProcs, p)
		}
		return nil
	})
	for _, f := range cgroupProcs {
		b, _ := os.ReadFile(f)
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
				s.netns[ns] = true
			}
			s.pids[pid] = cmdline(pid)
		}
	}
	host, _ := os.Readlink("/proc/self/ns/net")
	delete(s.netns, host)
	s.mounts = mountsUnder(t, dir)
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifaces {
		if master, err := os.Readlink("/sys/class/net/" + i.Name + "/master"); err == nil && filepath.Base(master) == bridgeName {
			s.veths = append(s.veths, i.Name)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "host", "sysctl.orig"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(l, "=")
		s.sysctls[k] = v
	}
	for _, l := range readLines(t, filepath.Join(dir, "host", "paths.orig")) {
		if state, path, _ := strings.Cut(l, " "); state == "absent" {
			s.absent = append(s.absent, path)
		}
	}
	return s
}

func assertClean(t *testing.T, dir string, before hostState) {
	t.Helper()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state directory %s still exists (%v)", dir, err)
	}
	for pid, cmd := range before.pids {
		if now := cmdline(pid); now != "" && now == cmd {
			t.Errorf("process %d still runs: %s", pid, cmd)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if cmd := cmdline(pid); strings.Contains(cmd, dir+"/") && !strings.Contains(cmd, ".test ") {
			t.Errorf("process %d refers to %s: %s", pid, dir, cmd)
		}
		if ns, err := os.Readlink(p + "/ns/net"); err == nil && before.netns[ns] {
			t.Errorf("process %d is in pod network namespace %s", pid, ns)
		}
	}
	if m := mountsUnder(t, dir); len(m) > 0 {
		t.Errorf("mounts left under %s: %v", dir, m)
	}
	for _, l := range readLines(t, "/proc/self/mountinfo") {
		if f := strings.Fields(l); len(f) > 4 && before.netns[f[3]] {
			t.Errorf("pod network namespace %s still mounted at %s", f[3], f[4])
		}
	}
	if _, err := net.InterfaceByName(bridgeName); err == nil {
		t.Errorf("bridge %s still exists", bridgeName)
	}
	for _, v := range before.veths {
		if _, err := net.InterfaceByName(v); err == nil {
			t.Errorf("pod interface %s still exists", v)
		}
	}
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("running iptables-save: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "EPHEM-CLUSTER") || strings.Contains(l, "KUBE-") ||
			strings.Contains(l, bridgeName) || strings.Contains(l, podPrefix) {
			t.Errorf("iptables still holds: %s", l)
		}
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + cgroupRoot); len(m) > 0 {
		t.Errorf("cgroups left: %v", m)
	}
	results, _ := filepath.Glob("/var/lib/cni/results/*")
	for _, f := range results {
		b, _ := os.ReadFile(f)
		if strings.HasPrefix(filepath.Base(f), cniNetwork+"-") || strings.Contains(string(b), dir+"/") {
			t.Errorf("CNI cache entry left: %s", f)
		}
	}
	for _, p := range before.absent {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s did not exist before up.sh and still exists", p)
		}
	}
	for k, want := range before.sysctls {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
		if got := strings.TrimSpace(string(b)); err != nil || got != want {
			t.Errorf("sysctl %s = %q (%v), want %q as before up.sh", k, got, err, want)
		}
	}
}

func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	var ms []string
	for _, l := range readLines(t, "/proc/self/mountinfo") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			ms = append(ms, f[4])
		}
	}
	return ms
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}
