package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/ephem-dev/ephem/pkg/runtime"
)

func TestPrintObject(t *testing.T) {
	v := struct {
		Name string `json:"name"`
		N    int    `json:"count"`
	}{"web", 2}
	var b bytes.Buffer
	if err := printObject(&b, "json", v); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"name\": \"web\",\n  \"count\": 2\n}\n"; b.String() != want {
		t.Errorf("json: %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := printObject(&b, "yaml", v); err != nil {
		t.Fatal(err)
	}
	if want := "count: 2\nname: web\n"; b.String() != want {
		t.Errorf("yaml: %q, want %q", b.String(), want)
	}
	if err := printObject(&b, "xml", v); err == nil || exitCodeFor(err) != 64 {
		t.Errorf("xml: %v, want a usage error", err)
	}
}

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	rows := [][]string{{"a", ""}, {"bbb", "c"}}
	if err := printTable(&b, []string{"X", "Y"}, rows, false); err != nil {
		t.Fatal(err)
	}
	if want := "X    Y\na    -\nbbb  c\n"; b.String() != want {
		t.Errorf("table:\n%q, want\n%q", b.String(), want)
	}
	b.Reset()
	_ = printTable(&b, []string{"X", "Y"}, rows, true)
	if want := "a    -\nbbb  c\n"; b.String() != want {
		t.Errorf("--no-headers:\n%q, want\n%q", b.String(), want)
	}
}

func TestPrintSessions(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	code := 3
	ss := []runtime.Session{
		{ID: "abc", Target: "pid:1", Image: "busybox", Command: []string{"sh", "-c", "x"}, State: "Terminated", Started: started, ExitCode: &code},
		{ID: "def", Target: "docker://web", Image: "alpine", State: "Running"},
	}
	now := started.Add(90 * time.Second)
	var b bytes.Buffer
	if err := printSessions(&b, outputOptions{Format: "json"}, ss, now); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("ls -o json is not json: %v\n%s", err, b.String())
	}
	want := []map[string]any{
		{"id": "abc", "target": "pid:1", "image": "busybox", "command": []any{"sh", "-c", "x"}, "state": "Terminated", "started": "2026-01-02T03:04:05Z", "exitCode": float64(3)},
		{"id": "def", "target": "docker://web", "image": "alpine", "command": []any{}, "state": "Running"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ls -o json fields (-want +got):\n%s", d)
	}
	b.Reset()
	if err := printSessions(&b, outputOptions{Format: "yaml"}, ss, now); err != nil {
		t.Fatal(err)
	}
	var fromYAML []map[string]any
	if err := yaml.Unmarshal(b.Bytes(), &fromYAML); err != nil || len(fromYAML) != 2 || fromYAML[0]["exitCode"] != float64(3) {
		t.Errorf("ls -o yaml: %v %v\n%s", err, fromYAML, b.String())
	}
	b.Reset()
	_ = printSessions(&b, outputOptions{Format: "json"}, nil, now)
	if b.String() != "[]\n" {
		t.Errorf("no sessions: %q, want []", b.String())
	}
	b.Reset()
	_ = printSessions(&b, outputOptions{Format: "wide", NoHeaders: true}, ss, now)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "abc ") || !strings.HasSuffix(lines[0], "2026-01-02T03:04:05Z") || !strings.Contains(lines[1], " Running ") {
		t.Errorf("ls -o wide --no-headers:\n%s", b.String())
	}
}

func TestImagesAndLsOutputFlags(t *testing.T) {
	cache, refs, digests := cachedImages(t)
	code, out, errOut := run(t, "--cache-dir", cache, "images", "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("images ls -o json: exit %d: %s", code, errOut)
	}
	var got []imageOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 2 {
		t.Fatalf("images ls -o json: %v\n%s", err, out)
	}
	for i, im := range got {
		if im.Reference != refs[i] || im.Digest != digests[i].String() || im.Size <= 0 || im.LastUsed == nil {
			t.Errorf("image %d: %+v, want %s %s", i, im, refs[i], digests[i])
		}
	}
	for _, field := range []string{`"reference"`, `"digest"`, `"size"`, `"lastUsed"`} {
		if !strings.Contains(out, field) {
			t.Errorf("images ls -o json has no %s field:\n%s", field, out)
		}
	}
	code, out, _ = run(t, "--cache-dir", cache, "images", "-o", "wide", "--no-headers")
	if code != 0 || strings.Contains(out, "REFERENCE") || !strings.Contains(out, digests[0].String()) {
		t.Errorf("images -o wide --no-headers: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "--cache-dir", cache, "images", "ls", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "- digest: "+digests[0].String()) {
		t.Errorf("images ls -o yaml: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"images", "ls", "-o", "xml"}, {"ls", "-o", "xml"}, {"ns", "tc://web", "-o", "wide"}} {
		code, _, errOut := run(t, append([]string{"--cache-dir", cache}, args...)...)
		if code != 64 || !strings.Contains(errOut, "use table") {
			t.Errorf("%q: exit %d %q, want 64 naming the formats", args, code, errOut)
		}
	}
}
