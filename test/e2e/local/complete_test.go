package local_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// completions runs "ephem __complete args..." with the cache dir and
// returns the candidate lines ("VALUE\tDESCRIPTION") and how long it took.
func completions(t *testing.T, f *fixture, cache string, args ...string) ([]string, time.Duration) {
	t.Helper()
	start := time.Now()
	r := e2eutil.Ephem(t, f.bin, cache, time.Minute, append([]string{"__complete"}, args...)...)
	took := time.Since(start)
	if r.ExitCode != 0 || strings.Contains(r.Stderr, "ephem:") {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, r.ExitCode, r.Stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	return lines[:len(lines)-1], took // the last line is the directive
}

// hasValue reports whether a candidate line's value is v.
func hasValue(lines []string, v string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return l == v || strings.HasPrefix(l, v+"\t") })
}

// TestCompletion completes, through cobra's __complete protocol as the
// shells call it, a real Docker container's name (as docker://NAME and as
// a bare NAME), this test's own PID with its command name, and an image
// the cache holds after a pull from the test registry; and it measures how
// long a completion takes.
func TestCompletion(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["distroless"], "ephem/distroless:test")
	name := "ephem-e2e-complete-web"
	e2eutil.DockerRun(t, host, "--name", name, "ephem/distroless:test")
	t.Setenv("DOCKER_HOST", host)
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	cache := t.TempDir()

	got, _ := completions(t, f, cache, "debug", "doc")
	if !hasValue(got, "docker://") {
		t.Errorf("debug doc: want the docker:// prefix among %q", got)
	}
	got, _ = completions(t, f, cache, "debug", "docker://ephem-e2e-complete")
	if !hasValue(got, "docker://"+name) {
		t.Errorf("debug docker://ephem-e2e-complete: want docker://%s among %q", name, got)
	}
	got, _ = completions(t, f, cache, "debug", "ephem-e2e-complete-w")
	if !hasValue(got, name) {
		t.Errorf("a bare name: want %s among %q", name, got)
	}
	got, _ = completions(t, f, cache, "cp", "docker://ephem-e2e-complete-w")
	if !hasValue(got, "docker://"+name+":") {
		t.Errorf("cp: want docker://%s: among %q", name, got)
	}
	self := "pid:" + itoa(os.Getpid())
	got, _ = completions(t, f, cache, "ns", self)
	if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, self+"\tlocal.test") }) {
		t.Errorf("ns %s: want this test's PID with its command name among %q", self, got)
	}

	// A cached image, after a run pulled it.
	f.debugWithCache(t, cache, "docker://"+name, "true")
	got, _ = completions(t, f, cache, "debug", "docker://"+name, "--image", "")
	if !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "ephem/busybox:test\t") }) {
		t.Errorf("--image: want the pulled %s among %q", f.busybox, got)
	}

	// Speed: the median of a few runs of the whole process.
	for _, word := range []string{"", "doc", "docker://", "pid:"} {
		var took []time.Duration
		for range 7 {
			_, d := completions(t, f, cache, "debug", word)
			took = append(took, d)
		}
		slices.Sort(took)
		t.Logf("ephem __complete debug %q: median %v, min %v, max %v", word, took[3], took[0], took[6])
		if took[3] > 300*time.Millisecond {
			t.Errorf("ephem __complete debug %q: median %v, want well under 300ms", word, took[3])
		}
	}

	// The scripts load in bash, and complete through __complete.
	script := e2eutil.Ephem(t, f.bin, cache, time.Minute, "completion", "bash")
	if script.ExitCode != 0 {
		t.Fatalf("completion bash: exit %d: %s", script.ExitCode, script.Stderr)
	}
	cmd := exec.Command("bash", "-c", "source /dev/stdin; complete -p ephem")
	cmd.Stdin = strings.NewReader(script.Stdout)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ephem") {
		t.Errorf("sourcing the bash completion: %v\n%s", err, out)
	}
}

// debugWithCache runs a debug command with the cache dir cache.
func (f *fixture) debugWithCache(t *testing.T, cache, target string, cmd ...string) {
	t.Helper()
	args := append([]string{"debug", target, "-q", "--image", f.busybox, "--"}, cmd...)
	if r := e2eutil.Ephem(t, f.bin, cache, 2*time.Minute, args...); r.ExitCode != 0 {
		t.Fatalf("ephem %s: exit %d\nstderr: %s", strings.Join(args, " "), r.ExitCode, r.Stderr)
	}
}

// TestMachineReadableOutput: ls and images ls print JSON that python's
// json.tool accepts, YAML, and tables with and without headers.
func TestMachineReadableOutput(t *testing.T) {
	f := setup(t)
	cache := t.TempDir()
	tg := startTarget(t, f, targetOptions{})
	pid := tg.pid
	f.debugWithCache(t, cache, tg.ref(), "true")
	for _, args := range [][]string{{"ls", "-o", "json"}, {"images", "ls", "-o", "json"}, {"ns", "pid:" + itoa(pid), "-o", "json"}} {
		r := e2eutil.Ephem(t, f.bin, cache, time.Minute, args...)
		if r.ExitCode != 0 {
			t.Fatalf("%q: exit %d: %s", args, r.ExitCode, r.Stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "python3", "-m", "json.tool")
		cmd.Stdin = strings.NewReader(r.Stdout)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%q | python3 -m json.tool: %v\n%s\ninput: %s", args, err, out, r.Stdout)
		}
	}
	r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "images", "ls", "-o", "json")
	if !strings.Contains(r.Stdout, `"reference": "`+f.busybox+`"`) {
		t.Errorf("images ls -o json: want reference %s:\n%s", f.busybox, r.Stdout)
	}
	r = e2eutil.Ephem(t, f.bin, cache, time.Minute, "images", "ls", "-o", "yaml")
	if !strings.Contains(r.Stdout, "reference: "+f.busybox) {
		t.Errorf("images ls -o yaml: want reference: %s:\n%s", f.busybox, r.Stdout)
	}
	r = e2eutil.Ephem(t, f.bin, cache, time.Minute, "images", "ls", "--no-headers")
	if strings.Contains(r.Stdout, "REFERENCE") || !strings.HasPrefix(r.Stdout, f.busybox) {
		t.Errorf("images ls --no-headers:\n%s", r.Stdout)
	}
	r = e2eutil.Ephem(t, f.bin, cache, time.Minute, "ls", "-o", "wide")
	if r.ExitCode != 0 || !strings.HasPrefix(r.Stdout, "ID ") || !strings.Contains(r.Stdout, "STARTED") {
		t.Errorf("ls -o wide: exit %d\n%s", r.ExitCode, r.Stdout)
	}
	r = e2eutil.Ephem(t, f.bin, cache, time.Minute, "ns", "pid:"+itoa(pid), "-o", "yaml")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "hostFrom: ") || !strings.Contains(r.Stdout, "namespaces:") {
		t.Errorf("ns -o yaml: exit %d\n%s", r.ExitCode, r.Stdout)
	}
}

// TestCompletionContainerd completes a real containerd container by its
// nerdctl name, in its namespace.
func TestCompletionContainerd(t *testing.T) {
	f := setup(t)
	cd := e2eutil.StartContainerd(t)
	const ns = "ephem-e2e-complete"
	image := cd.ImportImage(t, ns, f.images["distroless"], "ephem/distroless")
	cd.Run(t, ns, image, randomID(t), map[string]string{"nerdctl/name": "completed-web"})
	t.Setenv("CONTAINERD_ADDRESS", cd.Socket)
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	got, took := completions(t, f, "", "debug", "containerd://")
	if !hasValue(got, "containerd://"+ns+"/completed-web") {
		t.Errorf("debug containerd://: want containerd://%s/completed-web among %q", ns, got)
	}
	t.Logf("ephem __complete debug containerd://: %v", took)
	if got, _ = completions(t, f, "", "debug", "completed-w"); !hasValue(got, "completed-web") {
		t.Errorf("a bare name: want completed-web among %q", got)
	}
}

// TestCompletionPodman: podman's containers complete from its storages, as
// podman:// resolves them, with no podman service running: a rootful one
// by name, a name both rootful and rootless storages hold as the full
// podman://USER/NAME references.
func TestCompletionPodman(t *testing.T) {
	f := setup(t)
	rootful, rootless := e2eutil.RootfulPodman(t), e2eutil.RootlessPodman(t)
	image := e2eutil.PushImage(t, f.registry, "ephem/distroless", f.images["distroless"])
	rootful.Pull(t, image)
	rootless.Pull(t, image)
	s := randomID(t)[:8]
	web, both := "cpl-web-"+s, "cpl-both-"+s
	rootful.Start(t, web, image)
	rootful.Start(t, both, image)
	rootless.Start(t, both, image)
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("CONTAINERD_ADDRESS", "/nonexistent/containerd.sock")
	t.Setenv("KUBECONFIG", "/nonexistent/kubeconfig")
	got, took := completions(t, f, "", "debug", "podman://cpl-")
	if !hasValue(got, "podman://"+web) {
		t.Errorf("debug podman://cpl-: want podman://%s among %q", web, got)
	}
	if hasValue(got, "podman://"+both) {
		t.Errorf("debug podman://cpl-: %s is in two storages, so podman://%s is ambiguous, yet offered: %q", both, both, got)
	}
	all, _ := completions(t, f, "", "debug", "podman://")
	for _, want := range []string{"podman://root/" + both, "podman://" + rootless.User + "/" + both} {
		if !hasValue(all, want) {
			t.Errorf("debug podman://: want %s (a name in two storages) among %q", want, all)
		}
	}
	t.Logf("ephem __complete debug podman://cpl-: %v", took)
	if got, _ = completions(t, f, "", "debug", "cpl-web"); !hasValue(got, web) {
		t.Errorf("a bare name: want %s among %q", web, got)
	}
}
