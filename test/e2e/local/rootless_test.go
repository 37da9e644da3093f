package local_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// rlUser is the unprivileged user of the rootless tests; other suites use
// other names (ephemtest for rootless podman).
const rlUser = "ephemrl"

// rlFixture is the rootless tests' set-up, made as root: the user, a copy
// of the binary it may run, a directory of its own and an image whose
// layers exercise an unprivileged unpack.
type rlFixture struct {
	*fixture
	uid, gid int
	home     string
	bin      string
	dir      string // owned by the user
	image    string // busybox + layers with owners, a device, whiteouts
}

func setupRootless(t *testing.T) *rlFixture {
	t.Helper()
	f := setup(t)
	if _, err := exec.Command("id", "-u", rlUser).Output(); err != nil {
		if out, err := exec.Command("useradd", "-m", "-s", "/bin/sh", rlUser).CombinedOutput(); err != nil {
			// A concurrent useradd of the same name may have won.
			if _, err2 := exec.Command("id", "-u", rlUser).Output(); err2 != nil {
				t.Fatalf("useradd %s: %v: %s", rlUser, err, out)
			}
		}
	}
	r := &rlFixture{fixture: f, uid: idOf(t, "-u"), gid: idOf(t, "-g"), home: "/home/" + rlUser}
	// A fresh per-user cache: the test asserts where it lands.
	if err := os.RemoveAll(filepath.Join(r.home, ".cache", "ephem")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join(r.home, ".cache", "ephem")) })
	// Not t.TempDir: its parent is root's alone, and the user must reach it.
	dir, err := os.MkdirTemp("", "ephemrl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.dir = dir
	b, err := os.ReadFile(f.bin)
	if err != nil {
		t.Fatal(err)
	}
	r.bin = filepath.Join(r.dir, "ephem")
	if err := os.WriteFile(r.bin, b, 0o755); err != nil { //nolint:gosec // the user must run it
		t.Fatal(err)
	}
	r.dir = filepath.Join(r.dir, "user")
	if err := os.Mkdir(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(r.dir, r.uid, r.gid); err != nil {
		t.Fatal(err)
	}
	r.image = f.registry + "/ephem/rootless:test"
	img, err := rootlessImage(f.images["busybox"])
	if err != nil {
		t.Fatalf("building the rootless test image: %v", err)
	}
	if err := testimages.Push(context.Background(), img, r.image); err != nil {
		t.Fatalf("pushing %s: %v", r.image, err)
	}
	return r
}

func idOf(t *testing.T, flag string) int {
	t.Helper()
	out, err := exec.Command("id", flag, rlUser).Output()
	if err != nil {
		t.Fatalf("id %s %s: %v", flag, rlUser, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rootlessImage is busybox plus two layers: the first has a file of
// another owner, a setuid file, a character device, a read-only directory
// with a file in it, a directory and a file to hide later; the second makes that directory opaque and whites
// the file out.
func rootlessImage(base v1.Image) (v1.Image, error) {
	l1, err := tarLayer([]tar.Header{
		{Name: "owned/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "owned/file", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1234, Gid: 2345},
		{Name: "owned/suid", Typeflag: tar.TypeReg, Mode: 0o4755},
		{Name: "owned/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opq/old", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "gone", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "ro/", Typeflag: tar.TypeDir, Mode: 0o555},
		{Name: "ro/f", Typeflag: tar.TypeReg, Mode: 0o444},
	})
	if err != nil {
		return nil, err
	}
	l2, err := tarLayer([]tar.Header{
		{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "opq/new", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: ".wh.gone", Typeflag: tar.TypeReg, Mode: 0o644},
	})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(base, l1, l2)
}

func tarLayer(hdrs []tar.Header) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range hdrs {
		h := hdrs[i]
		var data []byte
		if h.Typeflag == tar.TypeReg && !strings.Contains(h.Name, ".wh.") {
			data = []byte(h.Name + "\n")
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// asUser returns a command that runs as the test user with a clean
// environment: nothing of it runs as root.
func (r *rlFixture) asUser(ctx context.Context, args ...string) *exec.Cmd {
	return runAs(ctx, rlUser, r.home, nil, args...)
}

// runAs returns a command that runs args as user (home its home) with a
// clean environment plus env.
func runAs(ctx context.Context, user, home string, env []string, args ...string) *exec.Cmd {
	argv := append([]string{"--reuid=" + user, "--regid=" + user, "--init-groups", "env", "-i",
		"HOME=" + home, "USER=" + user, "TERM=xterm", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}, env...)
	cmd := exec.CommandContext(ctx, "setpriv", append(argv, args...)...)
	cmd.Dir = "/"
	return cmd
}

// run runs args as the user and returns the exit code and output.
func (r *rlFixture) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := r.asUser(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	case err != nil:
		t.Fatalf("running %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}

// rlTarget is the user's own target: busybox httpd as PID 1 of new user
// (root mapped to the user), PID, net, UTS and mount namespaces, serving
// a page from a tmpfs only its mount namespace has.
type rlTarget struct {
	pid  int // the server, PID 1 inside
	cmd  *exec.Cmd
	page string // the served file's path, inside the target only
}

func (r *rlFixture) startTarget(t *testing.T) *rlTarget {
	t.Helper()
	www := filepath.Join(r.dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(www, r.uid, r.gid); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("busybox ip link set lo up && busybox hostname rltarget && mount -t tmpfs none %[1]s && "+
		"echo rootless-page > %[1]s/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h %[1]s", www)
	cmd := r.asUser(context.Background(), "unshare", "--user", "--map-root-user", "--net", "--pid", "--uts",
		"--fork", "--mount-proc", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the user's target: %v", err)
	}
	tg := &rlTarget{cmd: cmd, page: filepath.Join(www, "index.html")}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_, _ = cmd.Process.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if tg.pid == 0 {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
			if f := strings.Fields(string(b)); len(f) == 1 {
				tg.pid, _ = strconv.Atoi(f[0])
			}
		}
		if tg.pid != 0 {
			out, err := exec.Command("nsenter", "-t", strconv.Itoa(tg.pid), "-n", "busybox", "wget", "-qO-",
				"http://127.0.0.1:8080/").CombinedOutput()
			if err == nil && strings.Contains(string(out), "rootless-page") {
				return tg
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user's target (pid %d) did not answer on its loopback", tg.pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nsLink(t *testing.T, pid int, ns string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRootlessDebug: an unprivileged user debugs its own rootless target
// with no root anywhere: the target's loopback, processes, files and
// hostname, the namespaces it should and should not share, the image's
// files as the documented unprivileged unpack gives them, the per-user
// cache, and nothing left behind.
func TestRootlessDebug(t *testing.T) {
	r := setupRootless(t)
	tg := r.startTarget(t)
	script := "wget -qO- 127.0.0.1:8080; hostname; cat /proc/1/root" + tg.page + "; " +
		"for n in net uts pid user mnt ipc cgroup; do echo ns $n $(readlink /proc/self/ns/$n); done; " +
		"id -u; stat -c 'own %n %u:%g %a' /bin/busybox /owned/file /owned/suid /etc/passwd /ro /ro/f; " +
		"ls -A /opq | sed 's/^/opq /'; test -e /gone && echo gone-present; test -e /owned/null && echo devnode-present; " +
		"echo written > /tmp/w && cat /tmp/w; grep NoNewPrivs /proc/self/status"
	code, out, stderr := r.run(t, r.bin, "debug", "pid:"+strconv.Itoa(tg.pid), "-q", "--image", r.image, "--", "sh", "-c", script)
	if code != 0 {
		t.Fatalf("rootless ephem debug: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	t.Logf("the debug container says:\n%s", out)
	for _, want := range []string{"rootless-page\nrltarget\nrootless-page\n", "\n0\n", "written\n", "NoNewPrivs:\t1\n",
		"own /bin/busybox 0:0 755", "own /owned/file 0:0 640", "own /owned/suid 0:0 4755", "own /etc/passwd 0:0 644", "own /ro 0:0 755", "own /ro/f 0:0 444",
		"opq new\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in the debug container's output:\n%s", want, out)
		}
	}
	for _, bad := range []string{"opq old", "gone-present", "devnode-present"} {
		if strings.Contains(out, bad) {
			t.Errorf("%q in the debug container's output:\n%s", bad, out)
		}
	}
	// Namespaces: the target's user, net, uts and pid; the host's ipc and
	// cgroup, which the target shares; a mount namespace of its own.
	got := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "ns" {
			got[f[1]] = f[2]
		}
	}
	for _, ns := range []string{"net", "uts", "pid", "user", "ipc", "cgroup"} {
		if want := nsLink(t, tg.pid, ns); got[ns] != want {
			t.Errorf("%s namespace: %q, want the target's %q", ns, got[ns], want)
		}
	}
	if got["mnt"] == "" || got["mnt"] == nsLink(t, tg.pid, "mnt") || got["mnt"] == nsLink(t, os.Getpid(), "mnt") {
		t.Errorf("mnt namespace %q: want one of its own", got["mnt"])
	}
	if _, err := os.Stat(tg.page); err == nil {
		t.Errorf("%s exists on the host: the target's tmpfs was not private", tg.page)
	}
	// The cache is the user's, in ~/.cache/ephem, and owned by it.
	cache := filepath.Join(r.home, ".cache", "ephem")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(cache, "layers"), &st); err != nil || int(st.Uid) != r.uid {
		t.Errorf("per-user cache %s/layers: %v, uid %d, want owned by %d", cache, err, st.Uid, r.uid)
	}
	if code, out, stderr := r.run(t, r.bin, "images", "ls"); code != 0 || !strings.Contains(out, "ephem/rootless") {
		t.Errorf("the user's ephem images ls (default cache): exit %d, does not list %s:\n%s%s", code, r.image, out, stderr)
	}
	// The user prunes its own cache, read-only directories and all.
	if code, _, stderr := r.run(t, r.bin, "images", "rm", r.image); code != 0 {
		t.Errorf("the user's ephem images rm: exit %d: %s", code, stderr)
	}
	if code, _, stderr := r.run(t, r.bin, "images", "prune"); code != 0 {
		t.Errorf("the user's ephem images prune: exit %d: %s", code, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "layers", "sha256", "*")); len(left) != 0 {
		t.Errorf("prune left layers in the user's cache: %v", left)
	}
	// Nothing left: no process of the user but the target's, no mount
	// of the session on the host or in the target.
	time.Sleep(200 * time.Millisecond)
	ps, _ := exec.Command("ps", "-o", "pid=,comm=", "-u", rlUser).Output()
	for _, l := range strings.Split(strings.TrimSpace(string(ps)), "\n") {
		if strings.Contains(l, "ephem") {
			t.Errorf("left behind: %s\n%s", l, ps)
		}
	}
	for _, p := range []string{"/proc/self/mountinfo", fmt.Sprintf("/proc/%d/mountinfo", tg.pid)} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), cache) {
			t.Errorf("a mount of the session is left in %s:\n%s", p, b)
		}
	}
}

// TestRootlessNotOwned: without root, a process in a user namespace the
// user does not own (the host's init, a root process in a user namespace
// root made) is refused with 77 "needs root", before anything is pulled.
func TestRootlessNotOwned(t *testing.T) {
	r := setupRootless(t)
	other := exec.Command("unshare", "--user", "--map-root-user", "sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _, _ = other.Process.Wait() })
	for _, pid := range []int{1, other.Process.Pid} {
		code, out, stderr := r.run(t, r.bin, "debug", "pid:"+strconv.Itoa(pid), "--image", r.image, "--", "true")
		want := fmt.Sprintf("needs root: pid:%d runs as uid 0 in a user namespace you do not own", pid)
		if code != 77 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("pid %d as %s: exit %d, stderr %q (stdout %q), want 77 and one line saying %q", pid, rlUser, code, stderr, out, want)
		}
	}
	if _, err := os.Stat(filepath.Join(r.home, ".cache", "ephem", "layers")); err == nil {
		t.Errorf("a refused debug pulled the image into the user's cache")
	}
}

// TestRootlessTTY: without root, an interactive session gets a terminal
// of its own devpts, detaches, is listed by the user's ephem ls from the
// user's own sessions directory, and is reattached to; its exit code is
// the attaching ephem's.
func TestRootlessTTY(t *testing.T) {
	r := setupRootless(t)
	tg := r.startTarget(t)
	const d = 20 * time.Second
	term := e2eutil.StartTerminal(t, r.asUser(context.Background(), r.bin, "debug", "pid:"+strconv.Itoa(tg.pid), "-q", "-it",
		"--image", r.image, "--", "sh"))
	term.Expect(t, "/ # ", 3*d)
	term.Send(t, "tty; echo x$((6*7)); sleep 3603 &\r")
	term.Expect(t, "x42", d)
	if !strings.Contains(term.Screen(), "/dev/pts/0") {
		t.Errorf("want the session's own devpts (/dev/pts/0):\n%s", term.Screen())
	}
	term.Send(t, "\x10\x11")
	if code := term.Wait(t, d); code != 0 {
		t.Fatalf("detach: exit %d:\n%s", code, term.Screen())
	}
	term.Expect(t, "reattach with: ephem attach ", d)
	m := regexp.MustCompile(`reattach with: ephem attach ([0-9a-f]+)`).FindStringSubmatch(term.Screen())
	if m == nil {
		t.Fatalf("no reattach hint:\n%s", term.Screen())
	}
	id := m[1]
	if _, err := os.Stat(filepath.Join(r.home, ".cache", "ephem", "sessions", id+".json")); err != nil {
		t.Errorf("the session's record is not in the user's sessions directory: %v", err)
	}
	if code, out, stderr := r.run(t, r.bin, "ls"); code != 0 || !strings.Contains(out, id) {
		t.Errorf("the user's ephem ls: exit %d, does not list %s:\n%s%s", code, id, out, stderr)
	}
	again := e2eutil.StartTerminal(t, r.asUser(context.Background(), r.bin, "attach", id))
	again.Send(t, "\r")
	again.Expect(t, "/ # ", d)
	again.Send(t, "jobs; echo back-$((3+3)); exit 5\r")
	again.Expect(t, "back-6", d)
	if code := again.Wait(t, d); code != 5 {
		t.Errorf("attach: exit %d, want the shell's 5:\n%s", code, again.Screen())
	}
	waitFor(t, d, "the session's end", func() bool { return len(procs("sleep 3603")) == 0 })
	if code, out, _ := r.run(t, r.bin, "ls"); code != 0 || strings.Contains(out, id) {
		t.Errorf("the user's ephem ls: exit %d, still lists %s:\n%s", code, id, out)
	}
}

// TestRootlessPodman: the user of rootless podman debugs its own
// container as itself, found by name in its own storage: the container's
// server on its loopback, its files, its namespaces (but mnt).
func TestRootlessPodman(t *testing.T) {
	r := setupRootless(t)
	pm := e2eutil.RootlessPodman(t)
	image := e2eutil.PushImage(t, r.registry, "ephem/distroless", r.images["distroless"])
	pm.Pull(t, image)
	name := "rl-web-" + randomID(t)[:8]
	_, pid := pm.Start(t, name, image)
	u, err := user.Lookup(pm.User)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join(u.HomeDir, ".cache", "ephem")) })
	debug := func(t *testing.T, ref, script string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := runAs(ctx, pm.User, u.HomeDir, []string{"XDG_RUNTIME_DIR=/run/user/" + u.Uid}, r.bin, "debug", ref,
			"-q", "--image", r.image, "--", "sh", "-c", script)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ephem debug %s as %s: %v\nstdout: %s\nstderr: %s", ref, pm.User, err, out.String(), stderr.String())
		}
		return out.String()
	}
	out := debug(t, "podman://"+name, "wget -qO- 127.0.0.1:80; echo; ls /proc/1/root/; ls -l /proc/self/ns")
	if !strings.Contains(out, "OK - GET: Request completed") || !strings.Contains(out, "server\n") {
		t.Errorf("want the container's server on its loopback and its /server under /proc/1/root:\n%s", out)
	}
	got, want := parseNS(out), nsLinks(t, itoa(pid))
	for _, n := range []string{"user", "net", "ipc", "uts", "pid"} {
		if got[n] != want[n] {
			t.Errorf("%s namespace = %s, want the container's %s", n, got[n], want[n])
		}
	}
	if got["mnt"] == "" || got["mnt"] == want["mnt"] {
		t.Errorf("mnt namespace = %q, want one of its own (the container's is %s)", got["mnt"], want["mnt"])
	}

	// A container running as a user of its own (a subordinate ID on the
	// host, not the user's) is the user's all the same.
	other := name + "-u1000"
	t.Cleanup(func() { pm.Remove(t, other) })
	pm.Run(t, append(append([]string{"run", "-d", "--name", other, "--user", "1000", "--network", "none"}, e2eutil.PodmanLimits...),
		image, "-addr", "127.0.0.1:8080")...)
	opid := pm.PID(t, other)
	e2eutil.MustRun(t, nil, "nsenter", "-t", strconv.Itoa(opid), "-n", "ip", "link", "set", "lo", "up")
	out = debug(t, "podman://"+other, "wget -qO- 127.0.0.1:8080; echo; ps -o user,args")
	if !strings.Contains(out, "OK - GET: Request completed") || !strings.Contains(out, "1000     /server") {
		t.Errorf("want the uid-1000 container's server and its process:\n%s", out)
	}
}
