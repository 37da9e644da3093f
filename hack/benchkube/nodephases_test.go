package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Lines as containerd 1.6's CRI plugin logs them (the test cluster's
// logs/containerd.log), with one container before since and one that
// never started.
const containerdLog = `time="2026-12-03T10:00:49.000000000Z" level=info msg="CreateContainer within sandbox \"672729\" for container &ContainerMetadata{Name:old,Attempt:0,}"
time="2026-12-03T10:00:50.324135186Z" level=info msg="CreateContainer within sandbox \"672729\" for container &ContainerMetadata{Name:debugger-cw4vc,Attempt:0,}"
time="2026-12-03T10:00:50.350313234Z" level=info msg="CreateContainer within sandbox \"672729\" for &ContainerMetadata{Name:debugger-cw4vc,Attempt:0,} returns container id \"b200a0c1\""
time="2026-12-03T10:00:50.352847627Z" level=info msg="StartContainer for \"b200a0c1\""
time="2026-12-03T10:00:50.440409293Z" level=info msg="StartContainer for \"b200a0c1\" returns successfully"
time="2026-12-03T10:00:50.495593127Z" level=error msg="Failed to pipe stdin for container attach \"b200a0c1\"" error="write /proc/self/fd/28: file already closed"
time="2026-12-03T10:00:51.000000000Z" level=info msg="CreateContainer within sandbox \"672729\" for container &ContainerMetadata{Name:kshell-1,Attempt:0,}"
`

func TestReadRuntimeTimes(t *testing.T) {
	since := time.Date(2026, 12, 3, 10, 0, 50, 0, time.UTC)
	got, err := readRuntimeTimes(strings.NewReader(containerdLog), since)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["old"]; ok {
		t.Errorf("a container created before since was read: %v", got["old"])
	}
	d := got["debugger-cw4vc"]
	if want := time.Date(2026, 12, 3, 10, 0, 50, 324135186, time.UTC); !d.createAsked.Equal(want) {
		t.Errorf("create asked at %v, want %v", d.createAsked, want)
	}
	if want := time.Date(2026, 12, 3, 10, 0, 50, 440409293, time.UTC); !d.started.Equal(want) {
		t.Errorf("started at %v, want %v", d.started, want)
	}
	if k := got["kshell-1"]; k.createAsked.IsZero() || !k.started.IsZero() {
		t.Errorf("kshell-1 = %+v, want asked to create, not started", k)
	}
}

func TestPrintNodePhases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "containerd.log")
	if err := os.WriteFile(path, []byte(containerdLog), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 3, 10, 0, 50, 300135186, time.UTC) // 24 ms before the create
	samples := [][]timing{
		{{first: 200 * time.Millisecond, start: start, container: "debugger-cw4vc"}},
		{{first: 300 * time.Millisecond, start: start, container: "kshell-1"}}, // never started: left out
	}
	var out bytes.Buffer
	err := printNodePhases(&out, path, start, []string{"ephem", "kubectl"}, samples, 0.5, 150*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// 24 ms to the create, 116 ms create and start, 60 ms from there to 200 ms.
	for _, want := range []string{"| `ephem` | 24 ms | 116 ms | 60 ms | 1 |", "| `kubectl` | - | - | - | 0 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "0.5x kubectl") {
		t.Errorf("a comparison printed without kubectl's runtime times:\n%s", out.String())
	}
}
