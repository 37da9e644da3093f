//go:build e2e_kube

package kube_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/pkg/runtime"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// toolEnv makes the test registry's image the tool image of cp, ns and
// capture.
func toolEnv(name string) []string { return []string{"EPHEM_IMAGE=" + cluster.Image(name)} }

// TestEphemVerbsDistroless copies files out of and into the shell-less
// distroless pod, twice, and reports its namespaces: every verb reuses the
// one helper debug container the first copy added.
func TestEphemVerbsDistroless(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "cpsrc", 4*time.Minute)
	env, pod, dir := toolEnv("busybox"), "pod/"+w.Pod.Name, t.TempDir()
	run := func(args ...string) ephemResult {
		t.Helper()
		r := ephemEnv(t, ns, env, args...)
		if r.Code != 0 {
			t.Fatalf("ephem %v: exit %d\nstderr: %s", args, r.Code, r.Stderr)
		}
		return r
	}

	in := filepath.Join(dir, "in")
	if err := os.MkdirAll(filepath.Join(in, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, err := range []error{
		os.WriteFile(filepath.Join(in, "a.txt"), []byte("alpha\n"), 0o644),
		os.WriteFile(filepath.Join(in, "sub", "secret"), []byte("s3cret\n"), 0o600),
		os.Symlink("/etc/hostname", filepath.Join(in, "abs")),
		os.Chtimes(filepath.Join(in, "a.txt"), mtime, mtime),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for round := 1; round <= 2; round++ {
		out := filepath.Join(dir, "round"+string(rune('0'+round)))
		run("cp", pod+":/etc/hostname", out+"-hostname")
		if b, err := os.ReadFile(out + "-hostname"); err != nil || strings.TrimSpace(string(b)) != w.Pod.Name {
			t.Errorf("round %d: /etc/hostname: %q, %v; want the pod's name", round, b, err)
		}
		run("cp", pod+":/etc", out+"-etc", "-c", w.Container)
		if _, err := os.Stat(filepath.Join(out+"-etc", "hosts")); err != nil {
			t.Errorf("round %d: the copied /etc lacks hosts: %v", round, err)
		}
		run("cp", in, pod+":/in"+string(rune('0'+round)))
		run("cp", pod+":/in"+string(rune('0'+round)), out+"-back")
		checkCopiedTree(t, out+"-back", mtime)
	}
	// The absolute link resolves inside the target's root, not the helper's.
	r := run("cp", "-L", pod+":/in1/abs", "-")
	if !strings.Contains(r.Stdout, w.Pod.Name) {
		t.Errorf("cp -L of a link to /etc/hostname: the stream lacks the pod's name:\n%q", r.Stdout)
	}
	if names := ephemeralNames(t, ns, w.Pod.Name); len(names) != 1 {
		t.Errorf("two rounds of cp added ephemeral containers %v, want exactly one", names)
	}

	// A missing path: one line, 66, nothing left locally.
	before, _ := os.ReadDir(dir)
	r = ephemEnv(t, ns, env, "cp", pod+":/no/such/file", filepath.Join(dir, "missing"))
	if r.Code != 66 || !strings.Contains(r.Stderr, "no such file") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("missing path: exit %d %q, want 66 and one line saying no such file", r.Code, r.Stderr)
	}
	if after, _ := os.ReadDir(dir); len(after) != len(before) {
		t.Errorf("the failed copy left files: %d entries before, %d after", len(before), len(after))
	}
	if r := ephemEnv(t, ns, env, "cp", "-c", "x", "pid:1:/etc/hostname", "-"); r.Code != 64 {
		t.Errorf("-c with a pid: target: exit %d %q, want 64", r.Code, r.Stderr)
	}

	// ns through the same helper: net shared, mnt its own.
	r = run("ns", pod, "-o", "json")
	var rep runtime.NamespaceReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("ns -o json: %v\n%s", err, r.Stdout)
	}
	got := map[string]runtime.Namespace{}
	for _, n := range rep.Namespaces {
		got[n.Type] = n
	}
	if n := got["net"]; !n.Shared || n.Target == "" || n.Target != n.Debug {
		t.Errorf("net: %+v, want shared with the target", n)
	}
	if n := got["mnt"]; n.Shared || n.Target == n.Debug {
		t.Errorf("mnt: %+v, want the debug container's own", n)
	}
	if len(rep.Init) == 0 || !strings.HasSuffix(rep.Init[0], "server") || !strings.Contains(rep.HostFrom, "node") || rep.Root == "" || rep.CapEff == "" {
		t.Errorf("report: init %q, hostFrom %q, root %q, capEff %q", rep.Init, rep.HostFrom, rep.Root, rep.CapEff)
	}
	if names := ephemeralNames(t, ns, w.Pod.Name); len(names) != 1 {
		t.Errorf("ns added an ephemeral container: %v", names)
	}
}

// checkCopiedTree checks the tree TestEphemVerbsDistroless copied in and
// out again: contents, modes, times and the link as a link.
func checkCopiedTree(t *testing.T, dir string, mtime time.Time) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(dir, "a.txt")); err != nil || string(b) != "alpha\n" {
		t.Errorf("%s/a.txt: %q, %v", dir, b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "a.txt")); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("%s/a.txt: mtime %v (%v), want %v", dir, fi.ModTime(), err, mtime)
	}
	if fi, err := os.Stat(filepath.Join(dir, "sub", "secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s/sub/secret: %v, want mode 0600", dir, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "abs")); err != nil || l != "/etc/hostname" {
		t.Errorf("%s/abs: link %q, %v; want /etc/hostname", dir, l, err)
	}
}

// TestEphemCpTargetExits: the target exits in the middle of a copy out:
// one line, exit 75, no file at the destination.
func TestEphemCpTargetExits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: cluster.Image("busybox"),
				Command: []string{"sh", "-c", "truncate -s 4G /big && touch /ready; trap 'exit 1' TERM; while :; do sleep 0.2; done"}}},
			TerminationGracePeriodSeconds: &grace,
		},
	}
	if _, err := cluster.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.WaitPod(ctx, ns, "big", "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, e2eutil.BuildEphem(t), "-n", ns, "cp", "pod/big:/big", filepath.Join(dir, "big"))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, toolEnv("busybox")[0])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until data flows into the temporary directory, then end the target.
	err := pollFor(ctx, 90*time.Second, func() bool {
		var size int64
		_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, _ error) error {
			if fi != nil && fi.Mode().IsRegular() {
				size += fi.Size()
			}
			return nil
		})
		return size > 1<<20
	})
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("no data arrived: %v\nstderr: %s", err, stderr.String())
	}
	if _, stderr, err := cluster.Kubectl(ctx, "-n", ns, "exec", "big", "-c", "app", "--", "kill", "-TERM", "1"); err != nil {
		t.Fatalf("ending the target: %v: %s", err, stderr)
	}
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	msg := strings.TrimSpace(stderr.String())
	if code != 75 || !strings.Contains(msg, "exited") || strings.Count(lastLines(msg), "\n") != 0 {
		t.Errorf("target exits mid-copy: exit %d (%v), want 75 and one line saying it exited:\n%s", code, err, msg)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the cut copy left %v at the destination", left)
	}
}

// lastLines drops the helper's "added ..." and waiting lines before ephem's error.
func lastLines(s string) string {
	if i := strings.Index(s, "ephem:"); i >= 0 {
		return s[i:]
	}
	return s
}

// pollFor checks cond every 100ms for at most d.
func pollFor(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// TestEphemCpRestricted copies out of and into a non-root pod in a
// namespace enforcing PodSecurity "restricted": the helper runs as the
// target's user with the restricted profile.
func TestEphemCpRestricted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	uid := startLockedPod(ctx, t, ns)
	env := toolEnv("busybox")
	r := ephemEnv(t, ns, env, "cp", "pod/locked:/etc/hostname", "-")
	if r.Code != 0 || !strings.Contains(r.Stdout, "locked") {
		t.Fatalf("cp out of a non-root pod: exit %d\nstderr: %s", r.Code, r.Stderr)
	}
	src := filepath.Join(t.TempDir(), "note")
	if err := os.WriteFile(src, []byte("from ephem\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The target's user may write /dev/shm (mode 1777) only.
	if r := ephemEnv(t, ns, env, "cp", src, "pod/locked:/dev/shm/note"); r.Code != 0 {
		t.Fatalf("cp into a non-root pod: exit %d\nstderr: %s", r.Code, r.Stderr)
	}
	r = ephemEnv(t, ns, env, "cp", "pod/locked:/dev/shm/note", "-")
	if r.Code != 0 || !strings.Contains(r.Stdout, "from ephem") || !strings.Contains(r.Stdout, "0001750") {
		t.Errorf("cp back: exit %d, want the note owned by uid 1000 (octal 1750)\nstdout: %q\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	p, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, "locked", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Spec.EphemeralContainers); n != 1 {
		t.Fatalf("%d ephemeral containers, want 1", n)
	}
	if sc := p.Spec.EphemeralContainers[0].SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid {
		t.Errorf("the helper's security context %+v: want the target's uid %d", sc, uid)
	}
}

// TestEphemCaptureToolbox captures the nginx-like pod's loopback HTTP
// traffic with the toolbox image's tcpdump while the test sends requests
// to port 80 and to a closed port 81: the pcap, read back with the host's
// tcpdump, holds the requests and nothing the filter excludes, and no
// tcpdump is left in the pod. An image without tcpdump is a clear error.
func TestEphemCaptureToolbox(t *testing.T) {
	t.Parallel()
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatalf("reading the pcap back needs tcpdump (Debian package tcpdump): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	w, err := cluster.DeployNginxLike(ctx, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "web.pcap")
	done := make(chan ephemResult, 1)
	go func() {
		done <- ephemEnv(t, ns, toolEnv("toolbox"), "capture", "pod/"+w.Pod.Name, "-w", out, "--duration", "15s", "tcp", "port", "80")
	}()
	var r ephemResult
	for waiting := true; waiting; {
		select {
		case r = <-done:
			waiting = false
		case <-time.After(time.Second):
			for _, port := range []string{"80", "81"} {
				_, _, _ = cluster.Kubectl(ctx, "-n", ns, "exec", w.Pod.Name, "-c", w.Container, "--", "wget", "-qO-", "localhost:"+port)
			}
		}
	}
	if r.Code != 0 {
		t.Fatalf("capture: exit %d\nstderr: %s", r.Code, r.Stderr)
	}
	read, err := exec.CommandContext(ctx, tcpdump, "-nn", "-A", "-r", out).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, read)
	}
	if s := string(read); !strings.Contains(s, "GET / HTTP/1.1") || !strings.Contains(s, ".80:") || strings.Contains(s, ".81:") || strings.Contains(s, ".81 ") {
		t.Errorf("the pcap should hold the requests to port 80 and nothing of port 81:\n%s", s)
	}
	if ps, _, err := cluster.Kubectl(ctx, "-n", ns, "exec", w.Pod.Name, "-c", w.Container, "--", "ps"); err != nil || strings.Contains(ps, "tcpdump") {
		t.Errorf("after the capture the pod runs (%v):\n%s", err, ps)
	}

	r = ephemEnv(t, ns, toolEnv("busybox"), "capture", "pod/"+w.Pod.Name, "-w", out+"2", "--duration", "2s")
	if r.Code != 69 || !strings.Contains(r.Stderr, "no tcpdump") || !strings.Contains(r.Stderr, "EPHEM_IMAGE") {
		t.Errorf("an image without tcpdump: exit %d %q, want 69 naming an image with one", r.Code, r.Stderr)
	}
}

// TestEphemCpBaselineNamespace: PodSecurity "baseline" refuses general's
// SYS_PTRACE, so the helper for a root target falls back to the baseline
// profile, which it admits, and the copy works.
func TestEphemCpBaselineNamespace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "baseline"})
	w, err := cluster.DeployDistroless(ctx, ns, "base")
	if err != nil {
		t.Fatal(err)
	}
	r := ephemEnv(t, ns, toolEnv("busybox"), "cp", "deploy/base:/etc/hostname", "-")
	if r.Code != 0 || !strings.Contains(r.Stdout, w.Pod.Name) {
		t.Fatalf("cp in a baseline namespace: exit %d\nstderr: %s", r.Code, r.Stderr)
	}
	p, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, w.Pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ecs := p.Spec.EphemeralContainers; len(ecs) != 1 || ecs[0].SecurityContext != nil {
		t.Errorf("ephemeral containers %+v, want one helper with the runtime's defaults", ecs)
	}
}
