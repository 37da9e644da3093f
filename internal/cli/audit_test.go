package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/audit"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
)

func TestRunSessionAudits(t *testing.T) {
	for name, tc := range map[string]struct {
		err   error
		code  int
		error string
	}{
		"ok":            {nil, 0, ""},
		"command exit":  {&runtime.ExitError{Code: 3}, 3, ""},
		"target gone":   {fmt.Errorf("resolving pid:1: %w", target.ErrNotFound), ExitTargetNotFound, "resolving pid:1: "},
		"usage wrapped": {usageError("bad"), ExitUsage, "bad"},
	} {
		t.Run(name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "a.jsonl")
			var stderr bytes.Buffer
			g := &GlobalOptions{Streams: Streams{Out: &bytes.Buffer{}, Err: &stderr}, audit: auditOptions{Log: log}}
			info := sessionInfo{verb: "debug", backend: "local", target: "pid:1", image: "busybox", command: []string{"true"}}
			err := g.runSession(context.Background(), info, func(ctx context.Context, _ Streams) error {
				rep := runtime.ReportFrom(ctx)
				rep.SetResolvedTarget("pid 1 (process 1)")
				rep.SetImageDigest("sha256:0")
				time.Sleep(2 * time.Millisecond)
				return tc.err
			})
			if !errors.Is(err, tc.err) {
				t.Errorf("runSession returned %v, want %v", err, tc.err)
			}
			recs, _, rerr := audit.Read(log, time.Time{})
			if rerr != nil || len(recs) != 1 {
				t.Fatalf("%d records, %v (stderr %q)", len(recs), rerr, stderr.String())
			}
			r := recs[0]
			if r.ExitCode != tc.code || !strings.HasPrefix(r.Error, tc.error) || (tc.error == "") != (r.Error == "") ||
				r.ResolvedTarget != "pid 1 (process 1)" || r.ImageDigest != "sha256:0" || r.DurationMS < 2 || r.Host == "" {
				t.Errorf("record %+v", r)
			}
		})
	}
}

func TestRunSessionAuditOffOrUnwritable(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	g := &GlobalOptions{Streams: Streams{Err: &stderr}, audit: auditOptions{Log: filepath.Join(dir, "a.jsonl"), Disabled: true}}
	exit := &runtime.ExitError{Code: 4}
	run := func(context.Context, Streams) error { return exit }
	if err := g.runSession(context.Background(), sessionInfo{}, run); !errors.Is(err, exit) {
		t.Errorf("disabled: %v", err)
	}
	if _, err := os.Stat(g.audit.Log); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--no-audit wrote the log: %v", err)
	}
	g.audit = auditOptions{Log: "/proc/version/a.jsonl"}
	if err := g.runSession(context.Background(), sessionInfo{}, run); !errors.Is(err, exit) {
		t.Errorf("unwritable: %v, want the session's own error", err)
	}
	if !strings.Contains(stderr.String(), "warning:") {
		t.Errorf("no warning for an unwritable log: %q", stderr.String())
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.AddDate(0, 0, -7),
		"2026-05-01T00:00:00Z": time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "1x"} {
		if _, err := parseSince(in, now); exitCodeFor(err) != ExitUsage {
			t.Errorf("parseSince(%q): %v, want a usage error", in, err)
		}
	}
}
