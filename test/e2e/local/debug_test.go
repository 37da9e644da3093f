package local_test

import (
	"strings"
	"testing"
)

// TestSeedScenario is the seed blog post on a local process: a shell-less
// HTTP server in its own namespaces, debugged with busybox.
func TestSeedScenario(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})

	if out := f.debug(t, tg.ref(), "wget", "-qO-", "localhost:80"); !strings.Contains(out, "OK - GET: Request completed") {
		t.Errorf("wget localhost:80 from the debug container = %q, want the target's answer", out)
	}

	got := parseNS(f.debug(t, tg.ref(), "ls", "-l", "/proc/self/ns"))
	want := nsLinks(t, itoa(tg.pid))
	host := nsLinks(t, "self")
	for _, ns := range []string{"net", "ipc", "uts", "pid"} {
		if got[ns] != want[ns] {
			t.Errorf("%s namespace = %s, want the target's %s", ns, got[ns], want[ns])
		}
	}
	for _, ns := range []string{"user", "cgroup", "time"} {
		if got[ns] != host[ns] {
			t.Errorf("%s namespace = %s, want the host's %s (the target has none of its own)", ns, got[ns], host[ns])
		}
	}
	if got["mnt"] == want["mnt"] || got["mnt"] == host["mnt"] {
		t.Errorf("mnt namespace = %s, want a private one (target %s, host %s)", got["mnt"], want["mnt"], host["mnt"])
	}

	// The target's processes are visible and its files are at /proc/1/root.
	out := f.debug(t, tg.ref(), "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc/1/root/; hostname")
	if !strings.Contains(out, "/server -addr 127.0.0.1:80") {
		t.Errorf("PID 1 in the debug container is not the target:\n%s", out)
	}
	if !strings.Contains(out, "\nserver\n") {
		t.Errorf("ls /proc/1/root does not show the target's /server:\n%s", out)
	}
	if !strings.HasSuffix(out, "target\n") {
		t.Errorf("hostname is not the target's:\n%s", out)
	}
}

// TestPrivatePID: --share-pid=false gives the debug container its own PID
// namespace, the rest still shared.
func TestPrivatePID(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	r := f.ephem(t, "debug", tg.ref(), "-q", "--share-pid=false", "--image", f.busybox, "--", "sh", "-c",
		"ls -l /proc/self/ns; wget -qO- localhost:80; echo; ps -o pid,args")
	if r.ExitCode != 0 {
		t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	got, want := parseNS(r.Stdout), nsLinks(t, itoa(tg.pid))
	if got["pid"] == want["pid"] {
		t.Errorf("pid namespace is the target's with --share-pid=false")
	}
	if got["net"] != want["net"] {
		t.Errorf("net namespace %s, want the target's %s", got["net"], want["net"])
	}
	if !strings.Contains(r.Stdout, "OK - GET") {
		t.Errorf("no answer from the target's server:\n%s", r.Stdout)
	}
	if strings.Contains(r.Stdout, "/server") {
		t.Errorf("the target's process is visible without --share-pid:\n%s", r.Stdout)
	}
}

// TestUserNamespaceTarget: a target in its own user namespace (root mapped
// to host UID 100000) is joined in that user namespace too.
func TestUserNamespaceTarget(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{userns: true, port: 8080})
	out := f.debug(t, tg.ref(), "sh", "-c", "ls -l /proc/self/ns; cat /proc/self/uid_map; id -u; wget -qO- localhost:8080; echo; ls /proc/1/root; "+
		"stat -c 'owner=%u' /bin/busybox; touch /etc/new && echo write-ok")
	got, want := parseNS(out), nsLinks(t, itoa(tg.pid))
	for _, ns := range []string{"user", "net", "ipc", "uts", "pid"} {
		if got[ns] != want[ns] {
			t.Errorf("%s namespace = %s, want the target's %s", ns, got[ns], want[ns])
		}
	}
	if !strings.Contains(out, "100000") {
		t.Errorf("uid_map inside does not map to host UID 100000:\n%s", out)
	}
	if !strings.Contains(out, "\n0\n") {
		t.Errorf("the debug command is not root of the target's user namespace:\n%s", out)
	}
	if !strings.Contains(out, "OK - GET") || !strings.Contains(out, "server") {
		t.Errorf("server or target files not reachable:\n%s", out)
	}
	// The image is idmapped into the target's user namespace: its files
	// belong to that namespace's root, who can write the root filesystem.
	if !strings.Contains(out, "owner=0\n") || !strings.Contains(out, "write-ok") {
		t.Errorf("image files not owned by or writable for the namespace's root:\n%s", out)
	}
}

// TestExitCodes: the command's exit code is ephem's.
func TestExitCodes(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	for _, tt := range []struct {
		cmd  []string
		want int
	}{
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "exit 42"}, 42},
		{[]string{"sh", "-c", "kill -9 $$"}, 137},
		{[]string{"no-such-command"}, 127},
		{[]string{"/etc/passwd"}, 127},
	} {
		r := f.ephem(t, append([]string{"debug", tg.ref(), "-q", "--image", f.busybox, "--"}, tt.cmd...)...)
		if r.ExitCode != tt.want {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tt.cmd, r.ExitCode, tt.want, r.Stderr)
		}
	}
}

// TestNoDescriptorLeak: the command gets its three standard streams and
// nothing of ephem's (the control socket, listeners, layer pins, or what
// ephem itself inherited).
func TestNoDescriptorLeak(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	// ls opens the directory it lists: that is the one extra descriptor.
	out := f.debug(t, tg.ref(), "sh", "-c", "ls /proc/self/fd | wc -l")
	if strings.TrimSpace(out) != "4" {
		t.Errorf("the command has %s descriptors open, want 0, 1, 2 and ls's own", strings.TrimSpace(out))
	}
}

// TestStdin: -i passes standard input through; without it the command
// reads nothing.
func TestStdin(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	r := runWithStdin(t, f, "hello\nworld\n", "debug", tg.ref(), "-q", "-i", "--image", f.busybox, "--", "wc", "-l")
	if strings.TrimSpace(r) != "2" {
		t.Errorf("wc -l with -i = %q, want 2", r)
	}
	r = runWithStdin(t, f, "hello\n", "debug", tg.ref(), "-q", "--image", f.busybox, "--", "wc", "-l")
	if strings.TrimSpace(r) != "0" {
		t.Errorf("wc -l without -i = %q, want 0", r)
	}
}
