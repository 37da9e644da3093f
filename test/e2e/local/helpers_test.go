package local_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

// runWithStdin runs ephem with stdin from a pipe and returns its stdout.
func runWithStdin(t *testing.T, f *fixture, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, args...)
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+f.cache)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ephem %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// status returns the lines of /proc/self/status as a map.
func status(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func hasCap(hex string, c uint) bool {
	v, err := strconv.ParseUint(hex, 16, 64)
	return err == nil && v&(1<<c) != 0
}
