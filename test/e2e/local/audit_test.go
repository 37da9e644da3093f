package local_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/audit"
	"github.com/ephem-dev/ephem/pkg/record"
)

// TestAuditLog: every local session, whatever its end, appends one line
// with the target given and resolved, the image's digest and the exit code
// ephem returned; "ephem audit -o json" reads them back.
func TestAuditLog(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	log := filepath.Join(t.TempDir(), "logs", "audit.jsonl")
	digest, err := f.images["busybox"].Digest()
	if err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		args []string
		code int
	}{
		{[]string{"debug", tg.ref(), "-q", "--image", f.busybox, "--", "true"}, 0},
		{[]string{"debug", tg.ref(), "-q", "--image", f.busybox, "--", "sh", "-c", "exit 3"}, 3},
		{[]string{"debug", "pid:999999999", "-q", "--image", f.busybox, "--", "true"}, 66},
	}
	for _, r := range runs {
		res := f.ephem(t, append([]string{"--audit-log", log}, r.args...)...)
		if res.ExitCode != r.code {
			t.Fatalf("ephem %s: exit %d, want %d: %s", strings.Join(r.args, " "), res.ExitCode, r.code, res.Stderr)
		}
	}
	// Turned off, nothing is written.
	if res := f.ephem(t, "--audit-log", log, "--no-audit", "debug", tg.ref(), "-q", "--image", f.busybox, "--", "true"); res.ExitCode != 0 {
		t.Fatalf("--no-audit: exit %d: %s", res.ExitCode, res.Stderr)
	}
	if st, err := os.Stat(log); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("audit log: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != len(runs) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(runs), raw)
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i+1, err, line)
		}
		for _, k := range []string{"time", "uid", "host", "target", "image", "profile", "command", "tty", "exit_code", "duration_ms"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d has no %q: %s", i+1, k, line)
			}
		}
	}

	res := f.ephem(t, "--audit-log", log, "audit", "--since", "1h", "-o", "json")
	if res.ExitCode != 0 {
		t.Fatalf("ephem audit: exit %d: %s", res.ExitCode, res.Stderr)
	}
	var recs []audit.Record
	if err := json.Unmarshal([]byte(res.Stdout), &recs); err != nil || len(recs) != len(runs) {
		t.Fatalf("ephem audit -o json: %d records, %v:\n%s", len(recs), err, res.Stdout)
	}
	for i, r := range recs {
		if r.ExitCode != runs[i].code || r.Verb != "debug" || r.Backend != "local" || r.UID != 0 || r.Host == "" ||
			r.Image != f.busybox || r.Target != runs[i].args[1] || r.Time.Before(time.Now().Add(-time.Hour)) {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	ok := recs[1]
	if want := "pid " + strconv.Itoa(tg.pid) + " (process " + strconv.Itoa(tg.pid) + ")"; ok.ResolvedTarget != want {
		t.Errorf("resolved target %q, want %q", ok.ResolvedTarget, want)
	}
	if ok.ImageDigest != digest.String() {
		t.Errorf("image digest %q, want %s", ok.ImageDigest, digest)
	}
	if !slices.Equal(ok.Command, []string{"sh", "-c", "exit 3"}) || ok.DurationMS <= 0 || ok.Error != "" {
		t.Errorf("exit-3 record: %+v", ok)
	}
	if gone := recs[2]; gone.ResolvedTarget != "" || gone.Error == "" {
		t.Errorf("a target that does not exist: %+v", gone)
	}
	table := f.ephem(t, "--audit-log", log, "audit")
	if table.ExitCode != 0 || strings.Count(table.Stdout, tg.ref()) != 2 || !strings.Contains(table.Stdout, "EXIT") {
		t.Errorf("ephem audit: exit %d:\n%s", table.ExitCode, table.Stdout)
	}
	if r := f.ephem(t, "--audit-log", log, "audit", "--since", "yesterday"); r.ExitCode != 64 {
		t.Errorf("--since yesterday: exit %d, want 64", r.ExitCode)
	}
	// A log that cannot be written is a warning; the exit code stays.
	res = f.ephem(t, "--audit-log", "/proc/version/audit.jsonl", "debug", tg.ref(), "-q", "--image", f.busybox, "--", "sh", "-c", "exit 5")
	if res.ExitCode != 5 || !strings.Contains(res.Stderr, "not in the audit log") {
		t.Errorf("unwritable log: exit %d, stderr %q; want 5 and a warning", res.ExitCode, res.Stderr)
	}
}

// TestRecordSession records an interactive session, resize included,
// replays it with asciinema and reads it with a strict v2 parser: the
// typed command's output is there, the typed keys are not.
func TestRecordSession(t *testing.T) {
	f := setup(t)
	if _, err := exec.LookPath("asciinema"); err != nil {
		t.Fatal("asciinema is not installed (apt-get install asciinema)")
	}
	tg := startTarget(t, f, targetOptions{})
	dir := t.TempDir()
	cast := filepath.Join(dir, "s.cast")
	log := filepath.Join(dir, "audit.jsonl")
	const d = 10 * time.Second
	term := ephemTerminal(t, f, f.cache, "--audit-log", log, "debug", tg.ref(), "-q", "-it", "--record", cast,
		"--image", f.busybox, "--", "sh")
	term.Expect(t, "/ # ", d)
	term.Send(t, "echo rec-$((6*7))\r")
	term.Expect(t, "rec-42", d)
	term.Resize(t, 40, 100)
	term.SendUntil(t, "stty size\r", "40 100", d)
	term.Send(t, "exit 4\r")
	if code := term.Wait(t, d); code != 4 {
		t.Fatalf("exit %d, want 4:\n%s", code, term.Screen())
	}

	fh, err := os.Open(cast)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h, evs, err := record.Parse(fh)
	if err != nil {
		t.Fatalf("strict asciicast v2 parse: %v", err)
	}
	if h.Width != 80 || h.Height != 24 || h.Env["TERM"] != "xterm" {
		t.Errorf("header %+v, want 80x24 and TERM", h)
	}
	var out strings.Builder
	resized := false
	for _, e := range evs {
		switch e.Code {
		case record.Output:
			out.WriteString(e.Data)
		case record.Resize:
			resized = resized || e.Data == "100x40"
		case record.Input:
			t.Errorf("input recorded without --record-input: %q", e.Data)
		}
	}
	if !strings.Contains(out.String(), "rec-42") || !resized {
		t.Errorf("recording: output %q, resize to 100x40 %v", out.String(), resized)
	}

	// asciinema needs a terminal: script gives it one.
	var replay bytes.Buffer
	cmd := exec.Command("script", "-qec", "asciinema cat "+cast, "/dev/null")
	cmd.Stdout, cmd.Stderr = &replay, &replay
	cmd.Env = append(os.Environ(), "TERM=xterm", "HOME="+dir)
	if err := cmd.Run(); err != nil {
		t.Fatalf("asciinema cat: %v:\n%s", err, replay.String())
	}
	if !strings.Contains(replay.String(), "rec-42") {
		t.Errorf("asciinema cat does not show the command's output:\n%q", replay.String())
	}

	recs, _, err := audit.Read(log, time.Time{})
	if err != nil || len(recs) != 1 || recs[0].ExitCode != 4 || !recs[0].TTY || recs[0].Recording != cast {
		t.Errorf("audit of the recorded session: %+v, %v", recs, err)
	}
}

// TestRecordInput records the keys typed with --record-input, and refuses
// --record without a terminal.
func TestRecordInput(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	cast := filepath.Join(t.TempDir(), "in.cast")
	term := ephemTerminal(t, f, f.cache, "--no-audit", "debug", tg.ref(), "-q", "-it", "--record", cast, "--record-input",
		"--image", f.busybox, "--", "sh")
	term.Expect(t, "/ # ", 10*time.Second)
	term.Send(t, "exit 0\r")
	if code := term.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, term.Screen())
	}
	b, err := os.ReadFile(cast)
	if err != nil {
		t.Fatal(err)
	}
	_, evs, err := record.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for _, e := range evs {
		if e.Code == record.Input {
			in.WriteString(e.Data)
		}
	}
	if !strings.Contains(in.String(), "exit 0\r") {
		t.Errorf("input events %q, want the typed exit 0", in.String())
	}
	if r := f.ephem(t, "debug", tg.ref(), "-q", "--record", cast, "--image", f.busybox, "--", "true"); r.ExitCode != 64 || !strings.Contains(r.Stderr, "-it") {
		t.Errorf("--record without -t: exit %d %q, want 64", r.ExitCode, r.Stderr)
	}
	// A session that fails before it starts leaves no recording.
	gone := filepath.Join(filepath.Dir(cast), "gone.cast")
	term = ephemTerminal(t, f, f.cache, "--no-audit", "debug", "pid:999999999", "-q", "-it", "--record", gone, "--image", f.busybox, "--", "sh")
	if code := term.Wait(t, 10*time.Second); code != 66 {
		t.Errorf("a missing target: exit %d, want 66:\n%s", code, term.Screen())
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("a failed session left its recording: %v", err)
	}
}

// TestAuditAttach: a detached session's debug line carries its session ID
// and exit 0; the attach that ends it has a line of its own with the
// shell's exit code.
func TestAuditAttach(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	const d = 10 * time.Second
	term := ephemTerminal(t, f, f.cache, "--audit-log", log, "debug", tg.ref(), "-q", "-it", "--image", f.busybox, "--", "sh")
	term.Expect(t, "/ # ", d)
	term.Send(t, "\x10\x11")
	if code := term.Wait(t, d); code != 0 {
		t.Fatalf("detach: exit %d:\n%s", code, term.Screen())
	}
	term.Expect(t, "reattach with: ephem attach ", d)
	m := regexp.MustCompile(`reattach with: ephem attach ([0-9a-f]+)`).FindStringSubmatch(term.Screen())
	if m == nil {
		t.Fatalf("no reattach hint:\n%s", term.Screen())
	}
	again := ephemTerminal(t, f, f.cache, "--audit-log", log, "attach", m[1])
	again.Send(t, "\r")
	again.Expect(t, "/ # ", d)
	again.Send(t, "exit 6\r")
	if code := again.Wait(t, d); code != 6 {
		t.Fatalf("attach: exit %d:\n%s", code, again.Screen())
	}
	recs, _, err := audit.Read(log, time.Time{})
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if r := recs[0]; r.Verb != "debug" || r.ExitCode != 0 || r.SessionID != m[1] || !r.TTY {
		t.Errorf("detached debug: %+v", r)
	}
	if r := recs[1]; r.Verb != "attach" || r.ExitCode != 6 || r.Target != m[1] || !r.TTY {
		t.Errorf("attach: %+v", r)
	}
}
