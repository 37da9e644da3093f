package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// treeState is a directory tree's names, modes, sizes, mtimes and file
// contents' digests, to show that a session wrote nothing into it.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			b.WriteString(" " + hex.EncodeToString(sum[:8]))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return b.String()
}

// TestStoppedDockerContainer is the CrashLoopBackOff story for one host: a
// container that wrote its log and exited 3 is debugged with new
// namespaces and its filesystem read-only at /target, and nothing is
// written into it.
func TestStoppedDockerContainer(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["busybox"], "ephem/busybox:test")
	name := "ephem-e2e-crashed"
	e2eutil.DockerRun(t, host, "--name", name, "ephem/busybox:test",
		"sh", "-c", "mkdir -p /var/log && echo 'fatal: no config' > /var/log/app.log && exit 3")
	if code := e2eutil.Docker(t, host, "wait", name); code != "3" {
		t.Fatalf("docker wait %s = %q, want 3", name, code)
	}
	upper := e2eutil.Docker(t, host, "inspect", "--format", "{{.GraphDriver.Data.UpperDir}}", name)
	before := treeState(t, upper)
	t.Setenv("DOCKER_HOST", host)

	args := []string{"debug", "docker://" + name, "-q", "--image", f.busybox, "--", "sh", "-c",
		"cat /target/var/log/app.log; echo IF:$(sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ,); readlink /proc/self/ns/net; ip link show lo; " +
			"touch /target/x 2>&1; echo touch=$?; grep ' /target ' /proc/self/mountinfo; exit 7"}
	r := f.ephem(t, args...)
	if r.ExitCode != 7 {
		t.Fatalf("exit %d, want the command's 7\nstdout: %s\nstderr: %s", r.ExitCode, r.Stdout, r.Stderr)
	}
	out := r.Stdout
	if !strings.Contains(out, "fatal: no config\n") {
		t.Errorf("want the container's /var/log/app.log under /target:\n%s", out)
	}
	if !strings.Contains(out, "IF:lo,\n") {
		t.Errorf("/proc/net/dev lists more than lo:\n%s", out)
	}
	if !strings.Contains(out, "state UNKNOWN") && !strings.Contains(out, ",UP") {
		t.Errorf("lo is not up:\n%s", out)
	}
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	if !strings.Contains(out, "net:[") || strings.Contains(out, hostNet+"\n") {
		t.Errorf("the debug container's network namespace is the host's %s:\n%s", hostNet, out)
	}
	if !strings.Contains(out, "Read-only file system") || strings.Contains(out, "touch=0") {
		t.Errorf("touch /target/x did not fail with EROFS:\n%s", out)
	}
	if !strings.Contains(out, " ro,nosuid,nodev") {
		t.Errorf("/target is not mounted ro,nosuid,nodev:\n%s", out)
	}
	notice := "ephem: docker container " + name + " is not running (exited with code 3 at "
	if !strings.Contains(r.Stderr, notice) || !strings.Contains(r.Stderr, "read-only at /target") {
		t.Errorf("stderr lacks the notice %q:\n%s", notice, r.Stderr)
	}
	if after := treeState(t, upper); after != before {
		t.Errorf("the container's writable layer changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(upper, "x")); err == nil {
		t.Errorf("/target/x was created in the container's layer")
	}
	assertClean(t, f, "sh -c cat /target")
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), filepath.Dir(upper)) {
		t.Errorf("the host's mount table mentions the container's layer %s", upper)
	}

	t.Run("Copy", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "app.log")
		if r := f.ephem(t, "cp", "docker://"+name+":/var/log/app.log", dst); r.ExitCode != 0 {
			t.Fatalf("ephem cp: exit %d: %s", r.ExitCode, r.Stderr)
		}
		if b, _ := os.ReadFile(dst); string(b) != "fatal: no config\n" {
			t.Errorf("copied %q, want the container's log", b)
		}
		src := filepath.Join(t.TempDir(), "fix")
		if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Nothing is written into a stopped container: its filesystem is
		// read-only to ephem (exit 77, as for any read-only path).
		expectFailure(t, f, 77, []string{"read-only file system"}, "cp", src, "docker://"+name+":/fix")
		if after := treeState(t, upper); after != before {
			t.Errorf("the container's writable layer changed after cp:\n%s", after)
		}
	})
	t.Run("VerbsThatNeedAProcess", func(t *testing.T) {
		expectFailure(t, f, 66, []string{"is not running (exited with code 3", "ephem debug and ephem cp"}, "ns", "docker://"+name)
		expectFailure(t, f, 66, []string{"is not running"}, "port-forward", "docker://"+name, "8080:80")
		expectFailure(t, f, 66, []string{"is not running"}, "capture", "docker://"+name, "-w", filepath.Join(t.TempDir(), "x.pcap"), "-c", "1")
	})
	t.Run("ByName", func(t *testing.T) {
		r := f.ephem(t, "debug", name, "-q", "--image", f.busybox, "--", "cat", "/target/var/log/app.log")
		if r.ExitCode != 0 || r.Stdout != "fatal: no config\n" || !strings.Contains(r.Stderr, "is not running") {
			t.Errorf("bare %s: exit %d, stdout %q, stderr %q", name, r.ExitCode, r.Stdout, r.Stderr)
		}
	})
	t.Run("Removed", func(t *testing.T) {
		e2eutil.Docker(t, host, "rm", name)
		expectFailure(t, f, 66, []string{"no container", name}, "debug", "docker://"+name, "--image", f.busybox, "--", "true")
	})
}

// TestStoppedContainerdContainer debugs containerd containers with no
// running task: one created without a task, and one whose task exited.
func TestStoppedContainerdContainer(t *testing.T) {
	f := setup(t)
	cd := e2eutil.StartContainerd(t)
	const ns = "ephem-e2e-stopped"
	image := cd.ImportImage(t, ns, f.images["busybox"], "ephem/busybox")
	cd.Create(t, ns, image, "idle", nil)
	// runc's state of a task outlives the test's containerd: a fresh ID,
	// and the task deleted at the end.
	exited := "exited-" + randomID(t)[:12]
	cd.Ctr(t, ns, "run", "-d", image, exited, "sh", "-c", "echo written > /marker; exit 5")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = e2eutil.Run(ctx, nil, e2eutil.CtrBinary, "-a", cd.Socket, "-n", ns, "tasks", "delete", exited)
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(cd.Ctr(t, ns, "tasks", "ls"), "STOPPED") {
		if time.Now().After(deadline) {
			t.Fatalf("the task of containerd container exited did not stop: %s", cd.Ctr(t, ns, "tasks", "ls"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Setenv("CONTAINERD_ADDRESS", cd.Socket)

	r := f.ephem(t, "debug", "containerd://"+ns+"/"+exited, "-q", "--image", f.busybox, "--", "sh", "-c", "cat /target/marker; touch /target/y")
	if r.ExitCode == 0 || !strings.Contains(r.Stdout, "written\n") {
		t.Errorf("exited: exit %d (want touch's failure), stdout %q, stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "containerd container "+ns+"/"+exited+" is not running (exited with code 5 at ") {
		t.Errorf("exited: stderr lacks the notice:\n%s", r.Stderr)
	}
	out := f.debug(t, "containerd://"+ns+"/idle", "ls", "/target/bin")
	if !strings.Contains(out, "busybox") {
		t.Errorf("idle: /target/bin lacks busybox:\n%s", out)
	}
	dst := filepath.Join(t.TempDir(), "marker")
	if r := f.ephem(t, "cp", "containerd://"+ns+"/"+exited+":/marker", dst); r.ExitCode != 0 {
		t.Errorf("ephem cp: exit %d: %s", r.ExitCode, r.Stderr)
	}
	assertClean(t, f, "sh -c cat /target")
}

// TestImageTarget debugs image://REF: the image pulled through the cache,
// read-only at /target, and errors for images that do not exist.
func TestImageTarget(t *testing.T) {
	f := setup(t)
	r := f.ephem(t, "debug", "image://"+f.busybox, "-q", "--image", f.busybox, "--", "sh", "-c", "ls /target/bin; touch /target/z")
	if r.ExitCode != 1 || !strings.Contains(r.Stdout, "busybox") {
		t.Errorf("exit %d (want touch's 1), stdout %q, stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "ephem: image "+f.busybox+" runs nothing") {
		t.Errorf("stderr lacks the notice:\n%s", r.Stderr)
	}
	dst := filepath.Join(t.TempDir(), "passwd")
	if r := f.ephem(t, "cp", "image://"+f.busybox+":/etc/passwd", dst); r.ExitCode != 0 {
		t.Errorf("ephem cp: exit %d: %s", r.ExitCode, r.Stderr)
	} else if b, _ := os.ReadFile(dst); !strings.HasPrefix(string(b), "root:") {
		t.Errorf("copied /etc/passwd = %q", b)
	}
	t.Run("TerminalAndAttach", func(t *testing.T) {
		const d = 10 * time.Second
		term := ephemTerminal(t, f, f.cache, "debug", "image://"+f.busybox, "-q", "-it", "--image", f.busybox, "--", "sh")
		term.Expect(t, "/ # ", d)
		term.Send(t, "sleep 3611 &\r")
		waitFor(t, d, "the background job", func() bool { return len(procs("sleep 3611")) == 1 })
		term.Send(t, "\x10\x11")
		term.Wait(t, d)
		term.Expect(t, "reattach with: ephem attach ", d)
		id := regexp.MustCompile(`ephem attach ([0-9a-f]+)`).FindStringSubmatch(term.Screen())[1]
		if out := f.ephem(t, "ls").Stdout; !strings.Contains(out, id) || !strings.Contains(out, "image://"+f.busybox) {
			t.Errorf("ephem ls does not list session %s on image://%s:\n%s", id, f.busybox, out)
		}
		again := ephemTerminal(t, f, f.cache, "attach", id)
		again.Send(t, "\r")
		again.Expect(t, "/ # ", d)
		again.Send(t, "ls /target/bin/busybox && echo back-$((2+2)); exit 4\r")
		again.Expect(t, "back-4", d)
		if code := again.Wait(t, d); code != 4 {
			t.Errorf("attach: exit %d, want the shell's 4:\n%s", code, again.Screen())
		}
		assertClean(t, f, "sleep 3611")
	})
	expectFailure(t, f, 67, []string{"ephem/nope:test"}, "debug", "image://"+f.registry+"/ephem/nope:test", "-q", "--image", f.busybox, "--", "true")
	expectFailure(t, f, 64, []string{"image://"}, "debug", "image://", "--image", f.busybox, "--", "true")
	expectFailure(t, f, 64, []string{"--env-from-target", "runs nothing"},
		"debug", "image://"+f.busybox, "-q", "--env-from-target", "--image", f.busybox, "--", "true")
	expectFailure(t, f, 66, []string{"runs nothing", "ephem debug and ephem cp"}, "ns", "image://"+f.busybox)
	assertClean(t, f, "sh -c ls /target")
}
