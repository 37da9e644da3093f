package local_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// nsReport is ephem ns -o json's output.
type nsReport struct {
	Target     string `json:"target"`
	PID        int    `json:"pid"`
	HostFrom   string `json:"hostFrom"`
	Namespaces []struct {
		Type, Host, Target, Debug string
		Shared                    bool
	} `json:"namespaces"`
	Init           []string `json:"init"`
	UIDMap, GIDMap []string
	CapEff         string   `json:"capEff"`
	Seccomp        string   `json:"seccomp"`
	Cgroup         []string `json:"cgroup"`
	Root           string   `json:"root"`
}

// nsOf runs ephem ns -o json on ref and parses the report.
func nsOf(t *testing.T, f *fixture, ref string) nsReport {
	t.Helper()
	r := f.ephem(t, "ns", ref, "-o", "json")
	if r.ExitCode != 0 {
		t.Fatalf("ephem ns %s: exit %d: %s", ref, r.ExitCode, r.Stderr)
	}
	var rep nsReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("ephem ns %s -o json: %v\n%s", ref, err, r.Stdout)
	}
	return rep
}

// hostNS returns the host's namespace links as the report should have
// them: PID 1's, or this process's where PID 1's cannot be read.
func hostNS(t *testing.T) (map[string]string, string) {
	t.Helper()
	if _, err := os.Readlink("/proc/1/ns/net"); err != nil {
		return nsLinks(t, "self"), "ephem"
	}
	return nsLinks(t, "1"), "PID 1"
}

// checkReport compares a report with the test's own readlinks of pid's
// /proc/PID/ns and its status.
func checkReport(t *testing.T, rep nsReport, pid int) {
	t.Helper()
	want := nsLinks(t, itoa(pid))
	host, from := hostNS(t)
	if rep.HostFrom != from {
		t.Errorf("hostFrom = %q, want %q", rep.HostFrom, from)
	}
	seen := map[string]bool{}
	for _, n := range rep.Namespaces {
		seen[n.Type] = true
		if n.Target != want[n.Type] || n.Host != host[n.Type] {
			t.Errorf("%s: target %s host %s, want %s and %s", n.Type, n.Target, n.Host, want[n.Type], host[n.Type])
		}
		if n.Type == "mnt" {
			if n.Shared || n.Debug != "" {
				t.Errorf("mnt: shared %v debug %q, want the debug container's own", n.Shared, n.Debug)
			}
		} else if !n.Shared || n.Debug != want[n.Type] {
			t.Errorf("%s: shared %v debug %q, want shared with the target's %s", n.Type, n.Shared, n.Debug, want[n.Type])
		}
	}
	if len(seen) != 8 {
		t.Errorf("namespace types %v, want all 8", seen)
	}
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	st := status(string(b))
	if rep.CapEff != st["CapEff"] {
		t.Errorf("capEff %q, want %q", rep.CapEff, st["CapEff"])
	}
	if mode := map[string]string{"0": "disabled", "1": "strict", "2": "filter"}[st["Seccomp"]]; rep.Seccomp != mode {
		t.Errorf("seccomp %q, want %q", rep.Seccomp, mode)
	}
	if root, _ := os.Readlink("/proc/" + itoa(pid) + "/root"); rep.Root != root || rep.PID != pid {
		t.Errorf("root %q pid %d, want %q and %d", rep.Root, rep.PID, root, pid)
	}
	if len(rep.Cgroup) == 0 || len(rep.UIDMap) == 0 || len(rep.GIDMap) == 0 {
		t.Errorf("cgroup %q uid_map %q gid_map %q: want them all", rep.Cgroup, rep.UIDMap, rep.GIDMap)
	}
}

// TestNSReport: the report on the shell-less target matches /proc, and a
// debug container is where the report says it would be.
func TestNSReport(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	rep := nsOf(t, f, tg.ref())
	checkReport(t, rep, tg.pid)
	if strings.Join(rep.Init, " ") != "/server -addr 127.0.0.1:80" {
		t.Errorf("PID 1's command %q, want the server's", rep.Init)
	}
	if strings.Join(rep.UIDMap, ";") != "0 0 4294967295" {
		t.Errorf("uid_map %q, want the host's identity map", rep.UIDMap)
	}
	got := parseNS(f.debug(t, tg.ref(), "ls", "-l", "/proc/self/ns"))
	for _, n := range rep.Namespaces {
		if n.Shared && got[n.Type] != n.Debug {
			t.Errorf("%s: the debug container has %s, the report said %s", n.Type, got[n.Type], n.Debug)
		}
		if !n.Shared && (got[n.Type] == n.Target || got[n.Type] == n.Host) {
			t.Errorf("%s: the debug container has %s, not its own", n.Type, got[n.Type])
		}
	}
	r := f.ephem(t, "ns", tg.ref())
	for _, want := range []string{"NAMESPACE", "own", "shared", "PID 1:", "/server -addr 127.0.0.1:80", "CapEff:", "seccomp:", "root:"} {
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, want) {
			t.Errorf("ns table (exit %d) lacks %q:\n%s%s", r.ExitCode, want, r.Stdout, r.Stderr)
		}
	}
}

// TestNSUserNamespace: a target in its own user namespace shows it, shared,
// with its ID maps.
func TestNSUserNamespace(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{userns: true, port: 8080})
	rep := nsOf(t, f, tg.ref())
	checkReport(t, rep, tg.pid)
	if strings.Join(rep.UIDMap, ";") != "0 100000 65536" || strings.Join(rep.GIDMap, ";") != "0 100000 65536" {
		t.Errorf("uid_map %q gid_map %q, want 0 100000 65536", rep.UIDMap, rep.GIDMap)
	}
}

// TestNSDocker: the report on a Docker container by name.
func TestNSDocker(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["distroless"], "ephem/distroless:test")
	id := e2eutil.DockerRun(t, host, "--name", "ephem-e2e-ns", "ephem/distroless:test")
	pid := e2eutil.DockerPID(t, host, id)
	t.Setenv("DOCKER_HOST", host)
	rep := nsOf(t, f, "docker://ephem-e2e-ns")
	checkReport(t, rep, pid)
	if len(rep.Init) == 0 || rep.Init[0] != "/server" {
		t.Errorf("PID 1's command %q, want /server", rep.Init)
	}
}

// TestNSErrors: a missing target, a bad format, and a flag of another backend.
func TestNSErrors(t *testing.T) {
	f := setup(t)
	expectFailure(t, f, 66, []string{"no process with PID"}, "ns", "pid:999999999")
	expectFailure(t, f, 64, []string{`-o "xml": use table, json, yaml`}, "ns", "pid:1", "-o", "xml")
	expectFailure(t, f, 64, []string{"--image is for Kubernetes targets, not pid:1"}, "ns", "--image", "busybox", "pid:1")
}
