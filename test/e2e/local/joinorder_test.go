package local_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startUnshared runs `sleep` under the given unshare(1) wrappers and returns
// its PID (found by its unique argument) once it runs.
func startUnshared(t *testing.T, wrap ...string) int {
	t.Helper()
	arg := fmt.Sprintf("%d.%d", 3000+os.Getpid()%1000, time.Now().UnixNano()%100000)
	cmd := exec.Command(wrap[0], append(wrap[1:], "sleep", arg)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", wrap, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	var pid int
	waitFor(t, 5*time.Second, "the unshared sleep", func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err == nil && string(b) == "sleep\x00"+arg+"\x00" {
				pid, _ = strconv.Atoi(e.Name())
				return true
			}
		}
		return false
	})
	t.Cleanup(func() { _ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run() })
	return pid
}

// TestJoinOrder: a target in a user namespace of its own whose other
// namespaces are the host's (as bubblewrap, flatpak or a rootless container
// with host networking run), or belong to the initial user namespace,
// is joined as runc would: those namespaces first, then the user namespace,
// then the ones it owns. ephem used to join the user namespace first and
// fail with "joining the target's ipc namespace: Operation not permitted".
func TestJoinOrder(t *testing.T) {
	f := setup(t)
	for _, tc := range []struct {
		name string
		wrap []string
	}{
		{"host net, ipc and uts", []string{"unshare", "--user", "--map-root-user", "--pid", "--fork"}},
		{"a net namespace of the initial user namespace", []string{"unshare", "--net", "--ipc",
			"unshare", "--user", "--map-root-user", "--pid", "--uts", "--fork"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := startUnshared(t, tc.wrap...)
			want := nsLinks(t, strconv.Itoa(pid))
			out := f.debug(t, "pid:"+strconv.Itoa(pid), "sh", "-c", "ls -l /proc/self/ns; ps -o comm")
			got := parseNS(out)
			for _, ns := range []string{"user", "net", "ipc", "uts", "pid"} {
				if got[ns] != want[ns] {
					t.Errorf("%s namespace: %s in the debug container, the target's is %s", ns, got[ns], want[ns])
				}
			}
			if !strings.Contains(out, "sleep") {
				t.Errorf("the target's sleep is not visible:\n%s", out)
			}
		})
	}
}
