package local_test

import (
	"archive/tar"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestHostDevices: an image may ship a device node (here /devnode, 0666, the
// host's 1:5 /dev/zero), and a debug command may mknod one, but under every
// profile except sysadmin neither can be opened: the image root and /dev are
// nodev, as a runtime's device cgroup would have it. The standard devices
// keep working.
func TestHostDevices(t *testing.T) {
	f := setup(t)
	ref := imageWith(t, f, "ephem/devnode", &tar.Header{Name: "devnode", Mode: 0o666, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 5}, nil)
	tg := startTarget(t, f, targetOptions{})
	run := func(profile string, user string, script string) e2eutil.Result {
		args := []string{"debug", tg.ref(), "-q", "--image", ref, "--profile", profile}
		if user != "" {
			args = append(args, "--user", user)
		}
		return f.ephem(t, append(args, "--", "sh", "-c", script)...)
	}
	const std = `for d in null zero full random urandom; do head -c 1 /dev/$d >/dev/null 2>&1 || [ $d = null ] || echo "no /dev/$d"; done; echo std-ok`
	for _, tc := range []struct{ profile, user string }{
		{"general", ""}, {"baseline", ""}, {"netadmin", ""}, {"legacy", ""}, {"restricted", "65534"},
	} {
		r := run(tc.profile, tc.user, `head -c 3 /devnode | wc -c; mknod /tmp/n c 1 5 2>&1 && head -c 3 /tmp/n | wc -c; mknod /dev/n c 1 5 2>&1 && head -c 3 /dev/n | wc -c; `+std)
		out := r.Stdout + r.Stderr
		if strings.Contains(r.Stdout, "3\n") || !strings.Contains(out, "Permission denied") || !strings.Contains(r.Stdout, "std-ok") || strings.Contains(r.Stdout, "no /dev/") {
			t.Errorf("%s: a device node in the image or made by mknod was readable, or a standard device was not: exit %d\n%s", tc.profile, r.ExitCode, out)
		}
	}
	// The control: sysadmin reaches the host's devices, so the node is real.
	if r := run("sysadmin", "", `head -c 3 /devnode | wc -c`); strings.TrimSpace(r.Stdout) != "3" {
		t.Errorf("sysadmin: reading /devnode: exit %d %q %q, want 3 bytes", r.ExitCode, r.Stdout, r.Stderr)
	}
}
