package local_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// expectFailure runs ephem with a fresh cache and checks the exit code, a
// single-line error that contains each of want, and an image cache with no
// layer, partial or complete, left by the failure.
func expectFailure(t *testing.T, f *fixture, code int, want []string, args ...string) {
	t.Helper()
	cache := t.TempDir()
	r := e2eutil.Ephem(t, f.bin, cache, time.Minute, args...)
	if r.ExitCode != code {
		t.Errorf("ephem %v: exit %d, want %d\nstderr: %s", args, r.ExitCode, code, r.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ephem: ") {
		t.Errorf("ephem %v: want one line starting with 'ephem: ' on stderr, got:\n%s", args, r.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("ephem %v: stderr %q does not say %q", args, r.Stderr, w)
		}
	}
	assertNoLayers(t, cache)
}

// assertNoLayers fails if the cache holds a layer or a temporary entry
// (empty per-layer lock files hold nothing and may stay).
func assertNoLayers(t *testing.T, cache string) {
	t.Helper()
	for _, sub := range []string{"layers/sha256", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(cache, sub))
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".lock") {
				t.Errorf("cache %s has %s after a failure", sub, e.Name())
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	f := setup(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"debug"}, "needs a target"},
		{[]string{"debug", "4242"}, "pid:4242"},
		{[]string{"debug", "lxc://web"}, "supported: pid:"},
		{[]string{"debug", "pid:abc"}, "positive decimal"},
		{[]string{"debug", "pid:1", "--image", "Not A Reference!"}, "Not A Reference!"},
		{[]string{"debug", "pid:1", "--pull", "sometimes"}, "always, missing or never"},
		{[]string{"debug", "pid:1", "-t"}, "-t needs -i"},
		{[]string{"debug", "pid:1", "--profile", "root"}, "use one of"},
		{[]string{"debug", "pid:1", "-e", "no-equals"}, "NAME=VALUE"},
		{[]string{"debug", "pid:1", "--no-such-flag"}, "unknown flag"},
		{[]string{"debug", "pid:1", "ls"}, "after --"},
		{[]string{"bogus"}, "unknown command"},
		{[]string{"debug", "pid:1", "--image", "busybox", "wget", "-qO-", "host"}, "after --"},
		{[]string{"debug", "pid:1", "--image", "/srv/tools"}, "oci:/srv/tools"},
		{[]string{"debug", "pid:" + strings.Repeat("9", 100000)}, "too long"},
		{[]string{"debug", "pid:1", "--image", strings.Repeat("a", 100000)}, "too long"},
		{[]string{"debug", ""}, "the target is empty"},
		{[]string{"debug", "pid:1", "-w", "tmp"}, "absolute path"},
		// No terminal on standard input (the test's is not one).
		{[]string{"debug", "pid:1", "-it", "--image", f.busybox}, "needs a terminal"},
		{[]string{"debug", "pid:2", "--image", f.busybox, "--", "true"}, "kernel thread"},
		{[]string{"debug", "pid:1", "--image", f.busybox, "--", "true"}, "--profile sysadmin"},
	} {
		expectFailure(t, f, 64, []string{tt.want}, tt.args...)
	}
	// What is echoed of a huge argument is cut.
	if r := f.ephem(t, "debug", "pid:1", "--image", strings.Repeat("a", 100000)); len(r.Stderr) > 1000 {
		t.Errorf("a 100 kB image reference: %d bytes on stderr, want it cut", len(r.Stderr))
	}
	// A thread ID: one of this test process's threads other than its main.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if task.Name() != itoa(os.Getpid()) {
			expectFailure(t, f, 64, []string{"thread of process " + itoa(os.Getpid()), "use pid:" + itoa(os.Getpid())},
				"debug", "pid:"+task.Name(), "--image", f.busybox, "--", "true")
			break
		}
	}
	// A working directory the image lacks, or that is a file.
	tg := startTarget(t, f, targetOptions{})
	for dir, want := range map[string]string{"/no/such": "working directory /no/such does not exist in the image: pass another --workdir",
		"/bin/busybox": "working directory /bin/busybox is not a directory"} {
		r := f.ephem(t, "debug", tg.ref(), "-q", "-w", dir, "--image", f.busybox, "--", "pwd")
		if r.ExitCode != 64 || !strings.Contains(r.Stderr, want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("-w %s: exit %d %q, want 64 and one line saying %q", dir, r.ExitCode, r.Stderr, want)
		}
	}
}

func TestTargetErrors(t *testing.T) {
	f := setup(t)
	expectFailure(t, f, 66, []string{"no process with PID 2147483647"}, "debug", "pid:2147483647", "--image", f.busybox, "--", "true")

	// A zombie: exited, not yet reaped.
	z := exec.Command("true")
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	defer z.Wait()
	waitFor(t, 10*time.Second, "true to exit", func() bool {
		b, _ := os.ReadFile("/proc/" + itoa(z.Process.Pid) + "/stat")
		i := strings.LastIndexByte(string(b), ')')
		return i > 0 && strings.HasPrefix(string(b[i:]), ") Z")
	})
	expectFailure(t, f, 66, []string{"has exited"}, "debug", "pid:"+itoa(z.Process.Pid), "--image", f.busybox, "--", "true")

	// No Docker daemon behind DOCKER_HOST.
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	expectFailure(t, f, 68, []string{"DOCKER_HOST"}, "debug", "docker://web", "--image", f.busybox, "--", "true")
}

func TestImageErrors(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	debug := func(image string, extra ...string) []string {
		return append(append([]string{"debug", tg.ref(), "-q", "--image", image}, extra...), "--", "true")
	}
	expectFailure(t, f, 68, []string{"127.0.0.1:1"}, debug("127.0.0.1:1/ephem/busybox:test")...)
	expectFailure(t, f, 67, []string{"no-such-tag"}, debug(f.registry+"/ephem/busybox:no-such-tag")...)
	expectFailure(t, f, 67, []string{"--pull"}, debug(f.busybox, "--pull", "never")...)
	expectFailure(t, f, 67, []string{"no OCI image layout"}, debug("oci:"+t.TempDir()+"/none")...)

	// A blob whose bytes do not match its digest, and one cut short.
	for _, damage := range []string{"flip", "truncate"} {
		img, digest := uniqueImage(t, f, nil)
		ref := f.registry + "/ephem/corrupt-" + damage + ":test"
		if err := testimages.Push(context.Background(), img, ref); err != nil {
			t.Fatal(err)
		}
		damageBlob(t, f, digest, damage)
		expectFailure(t, f, 65, []string{"sha256"}, debug(ref)...)
	}

	// Layers that try to write outside their directory.
	for name, entry := range map[string]*tar.Header{
		"dotdot":   {Name: "../../escaped-by-ephem-test", Typeflag: tar.TypeReg, Mode: 0o644},
		"hardlink": {Name: "passwd-link", Typeflag: tar.TypeLink, Linkname: "../../../../etc/passwd"},
	} {
		img, _ := uniqueImage(t, f, entry)
		ref := f.registry + "/ephem/malicious-" + name + ":test"
		if err := testimages.Push(context.Background(), img, ref); err != nil {
			t.Fatal(err)
		}
		expectFailure(t, f, 65, []string{"layer"}, debug(ref)...)
		if _, err := os.Stat("/tmp/escaped-by-ephem-test"); err == nil {
			os.Remove("/tmp/escaped-by-ephem-test")
			t.Errorf("%s layer wrote outside the cache", name)
		}
	}
}

// TestAbsoluteLayerPath: a layer entry with an absolute name lands inside
// the image, as tar and every container runtime treat it, never on the host.
func TestAbsoluteLayerPath(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	img, _ := uniqueImage(t, f, &tar.Header{Name: "/tmp/absolute-by-ephem-test", Typeflag: tar.TypeReg, Mode: 0o644})
	ref := f.registry + "/ephem/absolute:test"
	if err := testimages.Push(context.Background(), img, ref); err != nil {
		t.Fatal(err)
	}
	r := f.ephem(t, "debug", tg.ref(), "-q", "--image", ref, "--", "cat", "/tmp/absolute-by-ephem-test")
	if r.ExitCode != 0 || r.Stdout != "evil\n" {
		t.Errorf("exit %d stdout %q stderr %q, want the file inside the image", r.ExitCode, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat("/tmp/absolute-by-ephem-test"); err == nil {
		os.Remove("/tmp/absolute-by-ephem-test")
		t.Error("an absolute layer entry was written on the host")
	}
}

// uniqueImage returns busybox plus one layer of random content (so no cache
// has it) or holding the given entry, and that layer's digest.
func uniqueImage(t *testing.T, f *fixture, entry *tar.Header) (v1.Image, v1.Hash) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	noise := make([]byte, 4096)
	_, _ = rand.Read(noise)
	_ = tw.WriteHeader(&tar.Header{Name: "noise", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(noise))})
	_, _ = tw.Write(noise)
	if entry != nil {
		h := *entry
		if h.Typeflag == tar.TypeReg {
			h.Size = 5
		}
		_ = tw.WriteHeader(&h)
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte("evil\n"))
		}
	}
	_ = tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(f.images["busybox"], l)
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, d
}

// damageBlob corrupts a blob in the registry's storage.
func damageBlob(t *testing.T, _ *fixture, d v1.Hash, how string) {
	t.Helper()
	var path string
	_ = filepath.WalkDir(os.TempDir(), func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Name() == "data" && filepath.Base(filepath.Dir(p)) == d.Hex {
			path = p
			return filepath.SkipAll
		}
		if err == nil && e.IsDir() && p != os.TempDir() && !strings.HasPrefix(e.Name(), "ephem-e2e-") && filepath.Dir(p) == os.TempDir() {
			return filepath.SkipDir
		}
		return nil
	})
	if path == "" {
		t.Fatalf("blob %s not found in the registry's storage", d)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch how {
	case "flip":
		b[len(b)/2] ^= 0xff
	case "truncate":
		b = b[:len(b)/2]
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNotRoot: the local engine says it needs root.
func TestNotRoot(t *testing.T) {
	f := setup(t)
	dir, bin := binaryForNobody(t, f)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin,
		"debug", "pid:1", "--cache-dir", dir, "--image", f.busybox, "--", "true")
	out, err := cmd.CombinedOutput()
	var code int
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if code != 77 || !strings.Contains(string(out), "needs root") {
		t.Errorf("as nobody: exit %d %q, want 77 saying it needs root", code, out)
	}
}

// TestNoOverlay: a kernel without overlayfs is reported as unsupported. The
// test hides overlay from /proc/filesystems in a private mount namespace.
func TestNoOverlay(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	fake := filepath.Join(t.TempDir(), "filesystems")
	if err := os.WriteFile(fake, []byte("nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\n\text4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "mount --bind " + fake + " /proc/filesystems && exec " + f.bin + " debug " + tg.ref() + " -q --image " + f.busybox + " -- true"
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+f.cache)
	out, err := cmd.CombinedOutput()
	var code int
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if code != 69 || !strings.Contains(string(out), "overlay") {
		t.Errorf("without overlayfs: exit %d %q, want 69 naming overlay", code, out)
	}
}

// binaryForNobody copies ephem into a new directory any user may enter
// (the test binary's own may not be), and returns both.
func binaryForNobody(t *testing.T, f *fixture) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "ephem")
	b, err := os.ReadFile(f.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}
