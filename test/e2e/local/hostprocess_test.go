package local_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestHostProcessTarget debugs a process that shares every namespace with
// ephem itself (a plain host process): there is nothing to join, and the
// debug container must still start (it once exited 71, its init taken for
// a plain ephem command because the list of namespaces to join was empty).
func TestHostProcessTarget(t *testing.T) {
	f := setup(t)
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	// The shared PID namespace is the host's: the target keeps its PID.
	out := f.debug(t, "pid:"+strconv.Itoa(pid), "sh", "-c",
		"echo ok; for n in net uts mnt; do readlink /proc/self/ns/$n; done; test -d /proc/"+strconv.Itoa(pid)+"/root/usr && echo root-visible")
	lines := strings.Fields(out)
	if len(lines) != 5 || lines[0] != "ok" || lines[4] != "root-visible" {
		t.Fatalf("debug output %q, want ok, three namespaces and root-visible", out)
	}
	for i, ns := range []string{"net", "uts"} {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		if lines[1+i] != host {
			t.Errorf("%s namespace %s, want the host's %s", ns, lines[1+i], host)
		}
	}
	if host, _ := os.Readlink("/proc/self/ns/mnt"); lines[3] == host {
		t.Errorf("mount namespace %s is the host's: the debug container needs its own", lines[3])
	}
}
