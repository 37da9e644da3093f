//go:build e2e_kube

package kube_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestEphemSeed is the seed scenario through ephem: the shell-less py-serv
// workload, wget localhost:80, the namespace comparison, /proc/1/root,
// and exit codes.
func TestEphemSeed(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "py-serv", 4*time.Minute)
	busybox := cluster.Image("busybox")

	if out := mustEphem(t, ns, "debug", "pod/"+w.Pod.Name, "--image", busybox, "--", "wget", "-qO-", "localhost:80"); !strings.Contains(out, "OK - GET: Request completed") {
		t.Errorf("wget localhost:80 = %q", out)
	}
	script := `for n in ipc net uts user time pid mnt; do echo "NS $n $(readlink /proc/self/ns/$n) $(readlink /proc/1/ns/$n)"; done; echo "ROOT $(ls /proc/1/root | tr '\n' ' ')"`
	out := mustEphem(t, ns, "debug", "deploy/py-serv", "--image", busybox, "--", "sh", "-c", script)
	found := 0
	for _, m := range regexp.MustCompile(`(?m)^NS (\w+) (\S+) (\S+)$`).FindAllStringSubmatch(out, -1) {
		found++
		if same, want := m[2] == m[3], m[1] != "mnt"; same != want {
			t.Errorf("%s namespace shared with the target = %v, want %v (%s vs %s)", m[1], same, want, m[2], m[3])
		}
	}
	if found != 7 {
		t.Errorf("namespace lines: %d, want 7:\n%s", found, out)
	}
	if !regexp.MustCompile(`(?m)^ROOT .*\bserver\b`).MatchString(out) || strings.Contains(out, "ROOT bin") {
		t.Errorf("/proc/1/root is not the distroless root:\n%s", out)
	}
	// Exit codes come back; without --target the PID namespace is the pod's own.
	if r := ephem(t, ns, "debug", "pod/"+w.Pod.Name, "--image", busybox, "--", "sh", "-c", "exit 7"); r.Code != 7 {
		t.Errorf("exit 7: got %d (%s)", r.Code, r.Stderr)
	}
	// Piped input reaches the command, which sees its end, and what it
	// prints afterwards comes back.
	r := ephemInput(t, ns, nil, "a\nb\n", "debug", "pod/"+w.Pod.Name, "-i", "--image", busybox, "--", "sh", "-c", "wc -l; sleep 1; echo done")
	if r.Code != 0 || r.Stdout != "2\ndone\n" {
		t.Errorf("-i with piped input: exit %d stdout %q stderr %q, want \"2\\ndone\\n\"", r.Code, r.Stdout, r.Stderr)
	}
	out = mustEphem(t, ns, "debug", "k8s://"+ns+"/"+w.Pod.Name, "--share-pid=false", "--image", busybox, "--", "cat", "/proc/1/cmdline")
	if strings.Contains(out, "server") {
		t.Errorf("--share-pid=false still shows the target as PID 1: %q", out)
	}
	// Every run added one container with a unique name.
	names := ephemeralNames(t, ns, w.Pod.Name)
	seen := map[string]bool{}
	for _, n := range names {
		if !strings.HasPrefix(n, "debugger-") || seen[n] {
			t.Errorf("ephemeral container names %v: want unique debugger-xxxxx", names)
		}
		seen[n] = true
	}
	if len(names) != 5 {
		t.Errorf("%d ephemeral containers, want 5: %v", len(names), names)
	}
}

// TestKubectlPlugin: installed as kubectl-ephem on PATH, ephem is the
// kubectl plugin "kubectl ephem", reading kubectl's flags the same way.
func TestKubectlPlugin(t *testing.T) {
	ctx, ns, w := distrolessWorkload(t, "web", 4*time.Minute)
	dir := t.TempDir()
	if err := os.Symlink(e2eutil.BuildEphem(t), filepath.Join(dir, "kubectl-ephem")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, cluster.KubectlPath, "ephem", "debug", "pod/"+w.Pod.Name,
		"-n", ns, "--image", cluster.Image("busybox"), "--", "wget", "-qO-", "localhost:80")
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "KUBECONFIG="+cluster.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK - GET: Request completed") {
		t.Errorf("kubectl ephem debug: %v\n%s", err, out)
	}
	help, _ := exec.CommandContext(ctx, filepath.Join(dir, "kubectl-ephem"), "--help").CombinedOutput()
	if !strings.Contains(string(help), "kubectl ephem [command]") {
		t.Errorf("kubectl-ephem --help does not present itself as kubectl ephem:\n%s", help)
	}
	// kubectl's --context picks the kubeconfig context, as for kubectl.
	r := ephem(t, ns, "debug", "pod/"+w.Pod.Name, "--context", "no-such-context", "--image", cluster.Image("busybox"), "--", "true")
	if r.Code != 78 || !strings.Contains(r.Stderr, "no-such-context") {
		t.Errorf("--context no-such-context: exit %d %q, want 78 naming it", r.Code, r.Stderr)
	}
}

// TestEphemTcpdump captures the workload's HTTP traffic with the netadmin
// profile and the toolbox image's real tcpdump. The filter matches only
// segments whose payload starts with "GET ": with a plain "port 80" and a
// packet count, tcpdump could start in the middle of one request's
// handshake or teardown and end before any request line went by.
func TestEphemTcpdump(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "web", 4*time.Minute)
	done := make(chan ephemResult, 1)
	go func() {
		done <- ephem(t, ns, "debug", "deploy/web", "--target", w.Container, "--profile", "netadmin", "--image", cluster.Image("toolbox"),
			"--", "tcpdump", "-i", "any", "-nn", "-A", "-c", "2",
			"tcp dst port 80 and tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420")
	}()
	// Keep sending requests until tcpdump has seen enough.
	for i := 0; ; i++ {
		select {
		case r := <-done:
			if r.Code != 0 || !strings.Contains(r.Stdout, "GET / HTTP/1.1") {
				t.Fatalf("tcpdump: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
			}
			return
		case <-time.After(2 * time.Second):
			if i > 40 {
				t.Fatal("tcpdump did not finish")
			}
			_ = ephem(t, ns, "debug", "pod/"+w.Pod.Name, "-q", "--image", cluster.Image("busybox"), "--", "wget", "-qO-", "localhost:80")
		}
	}
}

// TestEphemTTY drives ephem debug -it through a real terminal.
func TestEphemTTY(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "web", 4*time.Minute)
	term := ephemTTY(t, ns, "debug", "pod/"+w.Pod.Name, "-it", "--image", cluster.Image("busybox"), "--", "sh")
	term.expect(t, "If you don't see a command prompt")
	term.send(t, "\r")
	term.expect(t, "# ")
	term.send(t, "stty size; wget -qO- localhost:80; echo; echo tty-$((6*7))\r")
	term.expect(t, "tty-42")
	if s := term.screen(); !strings.Contains(s, "24 80") || !strings.Contains(s, "OK - GET") {
		t.Errorf("want a 24x80 terminal and the server's reply:\n%s", s)
	}
	if strings.Contains(term.screen(), "ignored --target") {
		t.Errorf("false warning that the runtime ignored --target:\n%s", term.screen())
	}
	term.send(t, "cat /proc/1/cmdline; echo\r")
	term.expect(t, "/server")
	term.send(t, "exit 5\r")
	if code := term.wait(t); code != 5 {
		t.Errorf("exit %d, want the shell's 5:\n%s", code, term.screen())
	}
}

// TestEphemImagePullFailsFast: a missing image fails on ErrImagePull with
// its exit code, long before the timeout.
func TestEphemImagePullFailsFast(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "web", 4*time.Minute)
	r := ephem(t, ns, "debug", "pod/"+w.Pod.Name, "--timeout", "120s", "--image", cluster.Registry+"/ephem/no-such-image:missing", "--", "true")
	if r.Code != 67 || !strings.Contains(r.Stderr, "ErrImagePull") {
		t.Errorf("exit %d stderr %q, want 67 naming ErrImagePull", r.Code, r.Stderr)
	}
	if r.Took > 60*time.Second {
		t.Errorf("took %v: it should fail fast, not wait for the timeout", r.Took)
	}
	r = ephem(t, ns, "debug", "pod/no-such-pod", "--image", cluster.Image("busybox"), "--", "true")
	if r.Code != 66 || !strings.Contains(r.Stderr, "no-such-pod") {
		t.Errorf("missing pod: exit %d %q, want 66", r.Code, r.Stderr)
	}
}

// TestEphemOutlivesTimeout: --timeout bounds the waits for the debug
// container to start and, after its output ends, for its exit code; a
// command that runs longer streams to its end and its exit code comes back
// (the exit code is watched for while the output streams).
func TestEphemOutlivesTimeout(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "web", 4*time.Minute)
	r := ephem(t, ns, "debug", "pod/"+w.Pod.Name, "--timeout", "3s", "--image", cluster.Image("busybox"), "--",
		"sh", "-c", "echo begun; sleep 6; echo ended; exit 4")
	if r.Code != 4 || r.Stdout != "begun\nended\n" {
		t.Errorf("a 6 s command with --timeout 3s: exit %d %q %q, want 4 and both lines", r.Code, r.Stdout, r.Stderr)
	}
}

// TestEphemDryRunAndCustom: --dry-run prints the container and adds
// nothing; --custom is applied after the profile.
func TestEphemDryRunAndCustom(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "web", 4*time.Minute)
	out := mustEphem(t, ns, "debug", "pod/"+w.Pod.Name, "--dry-run", "--profile", "netadmin", "--image", cluster.Image("busybox"), "--", "true")
	for _, want := range []string{"name: debugger-", "targetContainerName: distroless", "NET_ADMIN"} {
		if !strings.Contains(out, want) {
			t.Errorf("--dry-run output lacks %q:\n%s", want, out)
		}
	}
	if names := ephemeralNames(t, ns, w.Pod.Name); len(names) != 0 {
		t.Errorf("--dry-run added %v", names)
	}
	custom := t.TempDir() + "/custom.yaml"
	if err := writeFile(custom, "env:\n- name: FROM_CUSTOM\n  value: \"yes\"\n"); err != nil {
		t.Fatal(err)
	}
	if out := mustEphem(t, ns, "debug", "pod/"+w.Pod.Name, "--custom", custom, "--image", cluster.Image("busybox"), "--", "sh", "-c", "echo $FROM_CUSTOM"); strings.TrimSpace(out) != "yes" {
		t.Errorf("--custom env: %q", out)
	}
	if err := writeFile(custom, "image: evil\n"); err != nil {
		t.Fatal(err)
	}
	if r := ephem(t, ns, "debug", "pod/"+w.Pod.Name, "--custom", custom, "--image", cluster.Image("busybox"), "--", "true"); r.Code != 64 || !strings.Contains(r.Stderr, `"image"`) {
		t.Errorf("--custom with image: exit %d %q, want 64", r.Code, r.Stderr)
	}
}
