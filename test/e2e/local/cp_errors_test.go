package local_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The failures of ephem cp that need a full file system or a target that
// dies: each is one line with a documented exit code, and leaves no
// partial file at the destination.

// mountTmpfs mounts a tmpfs of size (such as "1m") at a new directory and
// unmounts it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// writeRandom writes n random bytes to p.
func writeRandom(t *testing.T, p string, n int) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// expectEmpty fails unless dir holds nothing.
func expectEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("%s after the failed copy: %v %v, want it empty", dir, names, err)
	}
}

// TestCpNoSpaceLocally: a file larger than the local destination's file
// system fails with 71 naming the destination, and leaves nothing there.
func TestCpNoSpaceLocally(t *testing.T) {
	f := setup(t)
	tg, root := ownRootTarget(t, f)
	writeRandom(t, root+"/big", 4<<20)
	dst := mountTmpfs(t, "1m")
	expectFailure(t, f, 71, []string{"no space left on device", "writing " + dst + "/big:"}, "cp", tg.ref()+":/big", dst)
	expectEmpty(t, dst)
	expectFailure(t, f, 71, []string{"no space left on device", "writing " + dst + "/renamed:"}, "cp", tg.ref()+":/big", dst+"/renamed")
	expectEmpty(t, dst)
}

// startFullTarget starts a process chrooted into root in its own mount, PID
// and network namespaces, with a tmpfs of size mounted at root/data in its
// mount namespace only, and returns its PID once it runs /server there.
func startFullTarget(t *testing.T, root, size string) int {
	t.Helper()
	if err := os.MkdirAll(root+"/data", 0o755); err != nil {
		t.Fatal(err)
	}
	// Private first: the tmpfs must not propagate to the host's namespace.
	script := "mount --make-rprivate / && mount -t tmpfs -o size=" + size + " tmpfs " + root + "/data && exec chroot " + root + " /server -addr 127.0.0.1:80"
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the target: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile("/proc/" + itoa(pid) + "/comm"); strings.TrimSpace(string(b)) == "server" {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target did not start /server within 10s")
		}
	}
}

// TestCpNoSpaceInTarget: a file larger than the target's file system fails
// with 71 naming the path in the target, and leaves no file there.
func TestCpNoSpaceInTarget(t *testing.T) {
	f := setup(t)
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", f.rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the target's root: %v: %s", err, out)
	}
	pid := startFullTarget(t, root, "1m")
	ref := "pid:" + itoa(pid)
	local := t.TempDir()
	writeRandom(t, local+"/big", 4<<20)
	data := "/proc/" + itoa(pid) + "/root/data"
	expectFailure(t, f, 71, []string{"no space left on device", "writing " + ref + ":/data/big:"}, "cp", local+"/big", ref+":/data/")
	expectEmpty(t, data)
	if err := os.Mkdir(local+"/dir", 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, local+"/dir/small", 1024)
	if err := os.Rename(local+"/big", local+"/dir/zbig"); err != nil {
		t.Fatal(err)
	}
	expectFailure(t, f, 71, []string{"no space left on device", "writing " + ref + ":/data/dir/zbig:"}, "cp", local+"/dir", ref+":/data")
	// The directory and the file that fitted stay; the one that did not
	// leaves no temporary file.
	ents, _ := os.ReadDir(data + "/dir")
	if len(ents) != 1 || ents[0].Name() != "small" {
		t.Errorf("/data/dir in the target: %v, want only small", ents)
	}
}

// TestCpTargetExitsMidCopy: a target killed while a large file is copied
// out of it fails the copy with 75, and nothing is left at the
// destination. The copying ephem is stopped (SIGSTOP) while the target is
// killed, so the copy is mid-file whatever the machine's speed.
func TestCpTargetExitsMidCopy(t *testing.T) {
	f := setup(t)
	tg, root := ownRootTarget(t, f)
	const size = 1 << 30
	if err := os.Truncate(root+"/big", size); err != nil { // sparse
		if err = os.WriteFile(root+"/big", nil, 0o644); err == nil {
			err = os.Truncate(root+"/big", size)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	dst := t.TempDir()
	cmd := exec.Command(f.bin, "cp", tg.ref()+":/big", dst)
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
	})

	// Wait until the copy has begun writing, then freeze it mid-file.
	var partial int64
	for deadline := time.Now().Add(30 * time.Second); partial == 0; time.Sleep(time.Millisecond) {
		if m, _ := filepath.Glob(dst + "/.ephem-cp-*/big"); len(m) == 1 {
			if fi, err := os.Stat(m[0]); err == nil {
				partial = fi.Size()
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the copy ended before it was stopped: %v: %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the copy wrote nothing within 30s")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(dst + "/.ephem-cp-*/big"); len(m) == 1 {
		if fi, err := os.Stat(m[0]); err == nil && fi.Size() >= size {
			t.Fatalf("the copy was complete (%d bytes) before the target could be killed: use a larger file", fi.Size())
		}
	}
	tg.stop()
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the copy did not end within a minute of the target's exit")
	}
	if code := cmd.ProcessState.ExitCode(); code != 75 {
		t.Errorf("exit %d, want 75\nstderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ephem: ") || !strings.Contains(lines[0], "target exited during the copy: "+tg.ref()) {
		t.Errorf("stderr: %q, want one line saying the target exited during the copy", stderr.String())
	}
	t.Logf("stopped after %d of %d bytes: %s", partial, int64(size), strings.TrimSpace(stderr.String()))
	expectEmpty(t, dst)
}
