package local_test

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
)

// attackerImage is the busybox test image with testdata/attacker at
// /attacker, pushed to the fixture's registry.
func attackerImage(t *testing.T, f *fixture) string {
	t.Helper()
	root, err := testimages.SourceDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "attacker")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := e2eutil.Run(ctx, []string{"CGO_ENABLED=0"}, "go", "-C", root, "build", "-o", bin, "./test/e2e/local/testdata/attacker")
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("building the attacker: %v %s", err, r.Stderr)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return imageWith(t, f, "ephem/attacker", &tar.Header{Name: "attacker", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}, data)
}

// imageWith pushes the busybox test image plus a layer of one entry (hdr,
// with data as its content) to the fixture's registry as name.
func imageWith(t *testing.T, f *fixture, name string, hdr *tar.Header, data []byte) string {
	t.Helper()
	return imageWithEntries(t, f, name, []tarEntry{{hdr, data}})
}

// attackLine is one process the attacker saw.
type attackLine struct {
	pid, comm, attach, uid, prm, eff, bnd string
	dirfds                                int
}

func parseAttack(t *testing.T, out string) (self map[string]string, procs []attackLine) {
	t.Helper()
	self = map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		kv := map[string]string{}
		for _, w := range f {
			if k, v, ok := strings.Cut(w, "="); ok {
				kv[k] = v
			}
		}
		switch {
		case len(f) > 0 && f[0] == "self":
			self = kv
		case len(f) > 3 && f[0] == "proc":
			n, _ := strconv.Atoi(kv["dirfds"])
			procs = append(procs, attackLine{pid: f[1], comm: f[2], attach: kv["attach"], uid: kv["uid"],
				prm: kv["prm"], eff: kv["eff"], bnd: kv["bnd"], dirfds: n})
		}
	}
	return self, procs
}

// subset reports whether capability mask a (hex) is within b.
func subset(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 16, 64)
	y, err2 := strconv.ParseUint(b, 16, 64)
	return err1 == nil && err2 == nil && x&^y == 0
}

// TestAttackEphemProcesses is the attacker's view of what ephem leaves in
// the target's PID namespace: from the debug container, under every
// profile, it tries to ptrace every process there that is not the
// target's. Each such process must refuse the attach or hold nothing the
// container could not have itself: no capability outside the container's
// bounding set, and no directory descriptor (a way out of its root).
func TestAttackEphemProcesses(t *testing.T) {
	f := setup(t)
	img := attackerImage(t, f)
	tg := startTarget(t, f, targetOptions{})
	for _, tc := range []struct {
		name string
		args []string
		// traceTarget: the profile may trace the target (SYS_PTRACE),
		// the control that shows the attach itself works.
		traceTarget bool
	}{
		{"general", []string{"--profile", "general"}, true},
		{"general-nonroot", []string{"--profile", "general", "--user", "1000"}, false},
		{"baseline", []string{"--profile", "baseline"}, false},
		{"netadmin", []string{"--profile", "netadmin"}, false},
		{"restricted", []string{"--profile", "restricted", "--user", "65534"}, false},
		{"sysadmin", []string{"--profile", "sysadmin"}, true},
		{"stdin", []string{"--profile", "general", "-i"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"debug", tg.ref(), "-q", "--image", img}, tc.args...)
			r := f.ephem(t, append(args, "--", "/attacker")...)
			if r.ExitCode != 0 {
				t.Fatalf("exit %d: %s %s", r.ExitCode, r.Stdout, r.Stderr)
			}
			t.Logf("the attacker saw:\n%s", r.Stdout)
			self, procs := parseAttack(t, strings.ReplaceAll(r.Stdout, "\r", ""))
			if self["bnd"] == "" {
				t.Fatalf("no self line in %q", r.Stdout)
			}
			ephems := 0
			for _, p := range procs {
				if p.pid == "1" { // the target's server
					if traced := p.attach == "ok"; traced != tc.traceTarget {
						t.Errorf("attaching to the target: %s, want traced=%v", p.attach, tc.traceTarget)
					}
					continue
				}
				ephems++
				if p.attach != "ok" {
					continue
				}
				if !subset(p.prm, self["bnd"]) || !subset(p.eff, self["bnd"]) || !subset(p.bnd, self["bnd"]) {
					t.Errorf("%s %s can be traced and holds capabilities prm=%s eff=%s bnd=%s beyond the container's bounding set %s",
						p.pid, p.comm, p.prm, p.eff, p.bnd, self["bnd"])
				}
				if p.dirfds > 0 {
					t.Errorf("%s %s can be traced and holds %d directory descriptors", p.pid, p.comm, p.dirfds)
				}
			}
			if ephems == 0 {
				t.Fatalf("the attacker saw no process of ephem's (the test would prove nothing): %s", r.Stdout)
			}
		})
	}
}

// TestFailedSetupLeavesNoZombie: a session whose set-up fails (here: the
// command is not in the image) leaves nothing in the target's PID
// namespace, not even a zombie init for the target's PID 1 (which, like
// most servers, does not reap) to hold forever.
func TestFailedSetupLeavesNoZombie(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	pidns, err := os.Readlink("/proc/" + strconv.Itoa(tg.pid) + "/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	// One failure in each of init's halves: the user is resolved while
	// init is privileged, the command looked up after it dropped.
	for _, cmd := range [][]string{{"--", "/no/such/command"}, {"-u", "nosuchuser", "--", "true"}} {
		args := append([]string{"debug", tg.ref(), "-q", "--image", f.busybox}, cmd...)
		r := f.ephem(t, args...)
		if r.ExitCode == 0 {
			t.Fatalf("%v: exit 0, want a failure", cmd)
		}
		others := func() []string {
			var out []string
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(tg.pid) {
					continue
				}
				if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == pidns {
					out = append(out, e.Name())
				} else if err != nil {
					// A zombie's namespace links cannot be read: find it
					// by its parent instead.
					if b, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
						fs := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
						if len(fs) > 1 && fs[1] == strconv.Itoa(tg.pid) {
							out = append(out, e.Name()+"(zombie)")
						}
					}
				}
			}
			return out
		}
		waitFor(t, 3*time.Second, "no process of ephem's in the target's PID namespace", func() bool { return len(others()) == 0 })
	}
}
