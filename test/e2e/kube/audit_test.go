//go:build e2e_kube

package kube_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/audit"
	"github.com/ephem-dev/ephem/pkg/record"
)

// TestEphemAudit: a Kubernetes session appends its audit line, with the
// pod and container it ran in, the image's digest from the container
// status and the command's exit code; a recorded terminal session is a
// valid asciicast holding the typed command's output.
func TestEphemAudit(t *testing.T) {
	_, ns, w := distrolessWorkload(t, "web", 4*time.Minute)
	busybox := cluster.Image("busybox")
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.jsonl")
	if r := ephem(t, ns, "--audit-log", log, "debug", "pod/"+w.Pod.Name, "--image", busybox, "--", "sh", "-c", "exit 3"); r.Code != 3 {
		t.Fatalf("exit %d, want 3: %s", r.Code, r.Stderr)
	}

	cast := filepath.Join(dir, "k.cast")
	term := ephemTTY(t, ns, "--audit-log", log, "debug", "pod/"+w.Pod.Name, "-it", "--record", cast, "--image", busybox, "--", "sh")
	term.expect(t, "If you don't see a command prompt")
	term.send(t, "\r")
	term.expect(t, "# ")
	term.send(t, "echo kube-$((6*7))\r")
	term.expect(t, "kube-42")
	term.send(t, "exit 0\r")
	if code := term.wait(t); code != 0 {
		t.Fatalf("terminal session: exit %d:\n%s", code, term.screen())
	}

	recs, bad, err := audit.Read(log, time.Time{})
	if err != nil || bad != 0 || len(recs) != 2 {
		t.Fatalf("audit log: %d records, %d bad, %v", len(recs), bad, err)
	}
	for i, want := range []struct {
		code int
		tty  bool
	}{{3, false}, {0, true}} {
		r := recs[i]
		if r.ExitCode != want.code || r.TTY != want.tty || r.Backend != "kubernetes" || r.Target != "pod/"+w.Pod.Name || r.Image != busybox {
			t.Errorf("record %d: %+v", i, r)
		}
		if !strings.HasPrefix(r.ResolvedTarget, "pod "+ns+"/"+w.Pod.Name+" container ") || !strings.HasPrefix(r.SessionID, "pod/"+w.Pod.Name+"/debugger-") {
			t.Errorf("record %d: resolved %q, session %q", i, r.ResolvedTarget, r.SessionID)
		}
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(r.ImageDigest) {
			t.Errorf("record %d: image digest %q", i, r.ImageDigest)
		}
	}

	f, err := os.Open(cast)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, evs, err := record.Parse(f)
	if err != nil {
		t.Fatalf("strict asciicast v2 parse: %v", err)
	}
	var out strings.Builder
	for _, e := range evs {
		if e.Code == record.Output {
			out.WriteString(e.Data)
		}
	}
	if !strings.Contains(out.String(), "kube-42") {
		t.Errorf("the recording lacks the command's output: %q", out.String())
	}
}
