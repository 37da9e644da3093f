package local_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// mtime is the modification time the tests' files carry, to the nanosecond.
var mtime = time.Date(2021, 6, 7, 8, 9, 10, 123456789, time.UTC)

// ownRootTarget starts the shell-less target chrooted into a copy of the
// distroless root that the test may change, and returns it with the
// copy's host path.
func ownRootTarget(t *testing.T, f *fixture) (*target, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", f.rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the target's root: %v: %s", err, out)
	}
	g := *f
	g.rootfs = root
	return startTarget(t, &g, targetOptions{}), root
}

// writeFile writes p with mode and the tests' mtime, creating its parents.
func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// checkFile fails unless p holds content with mode and the tests' mtime.
func checkFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("reading %s: %v", p, err)
		return
	}
	fi, _ := os.Stat(p)
	if string(b) != content || fi.Mode() != mode || !fi.ModTime().Equal(mtime) {
		t.Errorf("%s: %q mode %v mtime %v, want %q %v %v", p, b, fi.Mode(), fi.ModTime(), content, mode, mtime)
	}
}

// untarAll reads a tar stream into name → header and content.
func untarAll(t *testing.T, b []byte) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	hs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hs, data
		}
		if err != nil {
			t.Fatalf("reading the tar stream: %v", err)
		}
		c, _ := io.ReadAll(tr)
		hs[h.Name], data[h.Name] = h, string(c)
	}
}

// TestCpOutAndIn copies a file, a directory and tar streams out of and
// into the shell-less target, keeping modes and times.
func TestCpOutAndIn(t *testing.T) {
	f := setup(t)
	tg, root := ownRootTarget(t, f)
	writeFile(t, root+"/etc/app.yaml", "port: 80\n", 0o640)
	writeFile(t, root+"/data/logs/a.log", "a\n", 0o600)
	writeFile(t, root+"/data/logs/sub/b.log", "b\n", 0o644)
	if err := os.Symlink("a.log", root+"/data/logs/current"); err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()

	// Out: a file, a directory, a tar stream.
	mustCp(t, f, tg.ref()+":/etc/app.yaml", local+"/app.yaml")
	checkFile(t, local+"/app.yaml", "port: 80\n", 0o640)
	mustCp(t, f, tg.ref()+":/data/logs", local)
	checkFile(t, local+"/logs/a.log", "a\n", 0o600)
	checkFile(t, local+"/logs/sub/b.log", "b\n", 0o644)
	if l, err := os.Readlink(local + "/logs/current"); err != nil || l != "a.log" {
		t.Errorf("logs/current: %q %v, want the link to a.log", l, err)
	}
	r := f.ephem(t, "cp", tg.ref()+":/data/logs", "-")
	if r.ExitCode != 0 {
		t.Fatalf("cp to -: exit %d: %s", r.ExitCode, r.Stderr)
	}
	hs, data := untarAll(t, []byte(r.Stdout))
	if h := hs["logs/sub/b.log"]; h == nil || data["logs/sub/b.log"] != "b\n" || h.Mode != 0o644 || !h.ModTime.Equal(mtime) {
		t.Errorf("the tar stream's logs/sub/b.log: %+v %q", h, data["logs/sub/b.log"])
	}
	if h := hs["logs/current"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "a.log" {
		t.Errorf("the tar stream's logs/current: %+v, want the link", h)
	}

	// In: a file, a directory, a tar stream on standard input.
	writeFile(t, local+"/in/fix.conf", "fixed\n", 0o751)
	mustCp(t, f, local+"/in/fix.conf", tg.ref()+":/etc/fix.conf")
	checkFile(t, root+"/etc/fix.conf", "fixed\n", 0o751)
	mustCp(t, f, local+"/in", tg.ref()+":/data")
	checkFile(t, root+"/data/in/fix.conf", "fixed\n", 0o751)
	var stream bytes.Buffer
	tw := tar.NewWriter(&stream)
	_ = tw.WriteHeader(&tar.Header{Name: "streamed/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX})
	_ = tw.WriteHeader(&tar.Header{Name: "streamed/s.txt", Typeflag: tar.TypeReg, Mode: 0o604, Size: 3, ModTime: mtime, Format: tar.FormatPAX})
	_, _ = tw.Write([]byte("s!\n"))
	_ = tw.Close()
	runWithStdin(t, f, stream.String(), "cp", "-", tg.ref()+":/data/")
	checkFile(t, root+"/data/streamed/s.txt", "s!\n", 0o604)
	// What went in comes out the same.
	mustCp(t, f, tg.ref()+":/data/in/fix.conf", local+"/back.conf")
	checkFile(t, local+"/back.conf", "fixed\n", 0o751)
}

func mustCp(t *testing.T, f *fixture, args ...string) {
	t.Helper()
	if r := f.ephem(t, append([]string{"cp"}, args...)...); r.ExitCode != 0 || r.Stderr != "" {
		t.Fatalf("ephem cp %q: exit %d: %s", args, r.ExitCode, r.Stderr)
	}
}

// TestCpConfined: links planted in the target's root that point at a
// host file, absolutely and through "..", and ".." in the path itself,
// neither read the host's file nor write any host file.
func TestCpConfined(t *testing.T) {
	f := setup(t)
	tg, root := ownRootTarget(t, f)
	hostDir := t.TempDir()
	shadow := filepath.Join(hostDir, "shadow")
	writeFile(t, shadow, "root:SECRET-HASH:19000::::::\n", 0o600)
	rel := strings.Repeat("../", 20) + strings.TrimPrefix(hostDir, "/")
	for link, to := range map[string]string{"/evil-abs": shadow, "/evil-dir": hostDir, "/data/evil-rel": rel, "/data/evil-relfile": rel + "/shadow"} {
		if err := os.MkdirAll(filepath.Dir(root+link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(to, root+link); err != nil {
			t.Fatal(err)
		}
	}
	local := t.TempDir()
	in := filepath.Join(local, "in.txt")
	writeFile(t, in, "PWNED\n", 0o644)

	// Reading: not found inside the target, nothing written locally.
	dotdot := strings.Repeat("/..", 12) + hostDir + "/shadow"
	for _, src := range []string{"/evil-dir/shadow", "/data/evil-rel/shadow", dotdot} {
		expectFailure(t, f, 66, []string{"no such file or directory"}, "cp", tg.ref()+":"+src, local+"/out")
	}
	for _, src := range []string{"/evil-abs", "/data/evil-relfile"} {
		expectFailure(t, f, 66, []string{"no such file or directory"}, "cp", "-L", tg.ref()+":"+src, local+"/out")
	}
	// Without -L the link itself is copied, never what it names on the host.
	r := f.ephem(t, "cp", tg.ref()+":/evil-abs", "-")
	if hs, _ := untarAll(t, []byte(r.Stdout)); r.ExitCode != 0 || strings.Contains(r.Stdout, "SECRET") || hs["evil-abs"] == nil || hs["evil-abs"].Typeflag != tar.TypeSymlink {
		t.Errorf("cp of the link to -: exit %d %q, want the link alone", r.ExitCode, r.Stderr)
	}
	if ents, _ := os.ReadDir(local); len(ents) != 1 {
		t.Errorf("failed copies left files locally: %v", ents)
	}

	// Writing: through the links and "..", and a stream planting its own.
	for _, dst := range []string{"/evil-dir/shadow", "/evil-dir/", "/data/evil-rel/shadow", "/data/evil-rel/", dotdot} {
		expectFailure(t, f, 66, []string{"no such file or directory"}, "cp", in, tg.ref()+":"+dst)
	}
	var stream bytes.Buffer
	tw := tar.NewWriter(&stream)
	_ = tw.WriteHeader(&tar.Header{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: hostDir})
	_ = tw.WriteHeader(&tar.Header{Name: "esc/shadow", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6})
	_, _ = tw.Write([]byte("PWNED\n"))
	_ = tw.Close()
	cmd := exec.Command(f.bin, "cp", "-", tg.ref()+":/data/")
	cmd.Stdin = &stream
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 66 {
		t.Errorf("a stream writing through its own link: %v %s, want exit 66", err, out)
	}
	// Over the absolute link: the link in the target is replaced.
	mustCp(t, f, in, tg.ref()+":/evil-abs")
	if fi, err := os.Lstat(root + "/evil-abs"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("/evil-abs in the target: %v %v, want the copied file in place of the link", fi, err)
	}
	checkFile(t, shadow, "root:SECRET-HASH:19000::::::\n", 0o600)
	if ents, _ := os.ReadDir(hostDir); len(ents) != 1 {
		t.Errorf("the host directory the links name was written into: %v", ents)
	}
}

// TestCpErrors: a missing path, a missing local source, and backends
// without the verb each fail with one line and leave nothing.
func TestCpErrors(t *testing.T) {
	f := setup(t)
	tg, _ := ownRootTarget(t, f)
	local := t.TempDir()
	expectFailure(t, f, 66, []string{"no such file or directory", "/no/such"}, "cp", tg.ref()+":/no/such", local+"/x")
	expectFailure(t, f, 66, []string{"no such file or directory"}, "cp", "/etc/hostname", tg.ref()+":/no/such/dir/x")
	expectFailure(t, f, 64, []string{"no such file or directory"}, "cp", local+"/missing", tg.ref()+":/data")
	expectFailure(t, f, 64, []string{"TARGET:PATH"}, "cp", local+"/a", local+"/b")
	expectFailure(t, f, 66, []string{"no process with PID"}, "cp", "pid:999999999:/etc/x", local+"/x")
	if ents, _ := os.ReadDir(local); len(ents) != 0 {
		t.Errorf("failed copies left %v", ents)
	}
	// A flag of another backend: the helper container's image is Kubernetes'.
	expectFailure(t, f, 64, []string{"--image is for Kubernetes targets, not " + tg.ref()}, "cp", "--image", "busybox", tg.ref()+":/a", local+"/b")
}

// TestCpDocker copies out of and into a running Docker container.
func TestCpDocker(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["distroless"], "ephem/distroless:test")
	id := e2eutil.DockerRun(t, host, "--name", "ephem-e2e-cp", "--hostname", "web", "ephem/distroless:test")
	pid := e2eutil.DockerPID(t, host, id)
	t.Setenv("DOCKER_HOST", host)
	local := t.TempDir()
	mustCp(t, f, "docker://ephem-e2e-cp:/etc/hostname", local+"/hostname")
	if b, _ := os.ReadFile(local + "/hostname"); string(b) != "web\n" {
		t.Errorf("the container's /etc/hostname: %q, want web", b)
	}
	writeFile(t, local+"/dir/note.txt", "note\n", 0o640)
	mustCp(t, f, local+"/dir", "docker://ephem-e2e-cp:/")
	checkFile(t, "/proc/"+itoa(pid)+"/root/dir/note.txt", "note\n", 0o640)
	mustCp(t, f, "docker://"+id[:12]+":/dir", local+"/back")
	checkFile(t, local+"/back/note.txt", "note\n", 0o640)
	expectFailure(t, f, 64, []string{"is a device"}, "cp", "docker://ephem-e2e-cp:/dev/null", local+"/null")
}

// TestCpUserNamespace: what is copied into a target in its own user
// namespace belongs to that namespace's root (host UID 100000), or with -a
// to the owners the source has, as the namespace maps them.
func TestCpUserNamespace(t *testing.T) {
	f := setup(t)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	// The target's root, UID 100000, must reach its root directory.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-a", f.rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the target's root: %v: %s", err, out)
	}
	if err := os.Chown(root, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	g := *f
	g.rootfs = root
	tg := startTarget(t, &g, targetOptions{userns: true, port: 8080})
	local := t.TempDir()
	writeFile(t, local+"/f.txt", "f\n", 0o644)
	if err := os.Chown(local+"/f.txt", 1000, 1000); err != nil {
		t.Fatal(err)
	}
	mustCp(t, f, local+"/f.txt", tg.ref()+":/plain.txt")
	mustCp(t, f, "-a", local+"/f.txt", tg.ref()+":/kept.txt")
	for name, want := range map[string]uint32{"plain.txt": 100000, "kept.txt": 101000} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(root, name), &st); err != nil || st.Uid != want || st.Gid != want {
			t.Errorf("%s: owner %d:%d (%v), want host %d", name, st.Uid, st.Gid, err, want)
		}
	}
	// Out again with -a: the owner as the target sees it.
	r := f.ephem(t, "cp", tg.ref()+":/kept.txt", "-")
	if hs, _ := untarAll(t, []byte(r.Stdout)); hs["kept.txt"] == nil || hs["kept.txt"].Uid != 1000 {
		t.Errorf("kept.txt in the stream: %+v, want uid 1000 (exit %d %s)", hs["kept.txt"], r.ExitCode, r.Stderr)
	}
}
