package audit_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/audit"
	"github.com/google/go-cmp/cmp"
)

// A child process of TestConcurrentProcesses appends records and exits.
func TestMain(m *testing.M) {
	if path := os.Getenv("AUDIT_TEST_CHILD"); path != "" {
		writer, _ := strconv.Atoi(os.Getenv("AUDIT_TEST_WRITER"))
		for i := range perWriter {
			if err := audit.Append(path, record(writer, i)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const perWriter = 10

// record is writer w's i-th record; its command is longer than PIPE_BUF
// (4096) so that atomicity does not rest on the pipe guarantee.
func record(w, i int) audit.Record {
	return audit.Record{
		Time: time.Unix(1700000000, 0).UTC(), UID: w, Host: "h", Verb: "debug", Target: fmt.Sprintf("pid:%d", w),
		Command: []string{"echo", strings.Repeat(strconv.Itoa(w%10), 5000)}, ExitCode: i, SessionID: fmt.Sprintf("%d-%d", w, i),
	}
}

func TestRecordShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.jsonl")
	rec := audit.Record{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), UID: 1000, User: "alice", SudoUser: "bob", Host: "node1",
		Verb: "debug", Backend: "local", Target: "docker://web", ResolvedTarget: "pid 42 (docker container web)",
		Image: "busybox", ImageDigest: "sha256:abc", Profile: "general", Command: []string{"sh", "-c", "exit 3"},
		TTY: true, ExitCode: 3, DurationMS: 1500, SessionID: "s1",
	}
	if err := audit.Append(path, rec); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not one JSON object: %q: %v", b, err)
	}
	want := map[string]any{
		"time": "2026-01-02T03:04:05Z", "uid": 1000.0, "user": "alice", "sudo_user": "bob", "host": "node1",
		"verb": "debug", "backend": "local", "target": "docker://web", "resolved_target": "pid 42 (docker container web)",
		"image": "busybox", "image_digest": "sha256:abc", "profile": "general", "command": []any{"sh", "-c", "exit 3"},
		"tty": true, "exit_code": 3.0, "duration_ms": 1500.0, "session_id": "s1",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("record (-want +got):\n%s", d)
	}
	if b[len(b)-1] != '\n' {
		t.Errorf("the record does not end its line: %q", b)
	}
	for p, mode := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", p, st.Mode().Perm(), mode, err)
		}
	}
	recs, bad, err := audit.Read(path, time.Time{})
	if err != nil || bad != 0 || len(recs) != 1 {
		t.Fatalf("Read: %d records, %d bad, %v", len(recs), bad, err)
	}
	if d := cmp.Diff(rec, recs[0]); d != "" {
		t.Errorf("read back (-want +got):\n%s", d)
	}
}

// checkLog reads every line of the files and checks that each of writers
// wrote each of its records exactly once.
func checkLog(t *testing.T, writers int, files ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			var r audit.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s:%d is not valid JSON (%v): %.100q", f, n, err, sc.Text())
			}
			if len(r.Command) != 2 || r.Command[1] != record(r.UID, 0).Command[1] {
				t.Fatalf("%s:%d: writer %d's record holds another's data", f, n, r.UID)
			}
			seen[r.SessionID]++
		}
		_ = fh.Close()
	}
	for w := range writers {
		for i := range perWriter {
			if id := fmt.Sprintf("%d-%d", w, i); seen[id] != 1 {
				t.Errorf("record %s found %d times", id, seen[id])
			}
		}
	}
	if len(seen) != writers*perWriter {
		t.Errorf("%d distinct records, want %d", len(seen), writers*perWriter)
	}
}

func TestConcurrentProcesses(t *testing.T) {
	const writers = 100
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "AUDIT_TEST_CHILD="+path, "AUDIT_TEST_WRITER="+strconv.Itoa(w))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("writer %d: %w: %s", w, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkLog(t, writers, path)
}

func TestConcurrentGoroutinesRotate(t *testing.T) {
	const writers = 100
	// About 5 kB a record, 1000 records: one rotation, at 3 MB.
	old := audit.MaxSize
	audit.MaxSize = 3 << 20
	t.Cleanup(func() { audit.MaxSize = old })
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if err := audit.Append(path, record(w, i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	st, err := os.Stat(path + ".1")
	if err != nil {
		t.Fatalf("no rotation: %v", err)
	}
	if st.Size() < audit.MaxSize {
		t.Errorf("rotated at %d bytes, want >= %d", st.Size(), audit.MaxSize)
	}
	checkLog(t, writers, path+".1", path)
	recs, bad, err := audit.Read(path, time.Time{})
	if err != nil || bad != 0 || len(recs) != writers*perWriter {
		t.Errorf("Read: %d records, %d bad, %v; want %d", len(recs), bad, err, writers*perWriter)
	}
}

func TestReadSinceAndBadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	now := time.Now().UTC().Truncate(time.Second)
	for _, age := range []time.Duration{3 * time.Hour, time.Hour, time.Minute} {
		if err := audit.Append(path, audit.Record{Time: now.Add(-age), Target: age.String()}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"time":"2026-`) // a crash mid-line
	_ = f.Close()
	recs, bad, err := audit.Read(path, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Target)
	}
	if d := cmp.Diff([]string{"1h0m0s", "1m0s"}, got); d != "" || bad != 1 {
		t.Errorf("since 2h (-want +got):\n%s; bad %d, want 1", d, bad)
	}
	if recs, _, err := audit.Read(filepath.Join(t.TempDir(), "none"), time.Time{}); err != nil || len(recs) != 0 {
		t.Errorf("a missing log: %v, %v; want none, nil", recs, err)
	}
}
