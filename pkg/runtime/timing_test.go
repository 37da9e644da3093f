package runtime_test

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
)

func TestTimerReport(t *testing.T) {
	t.Setenv("EPHEM_DEBUG_TIMING", "")
	var off bytes.Buffer
	runtime.NewTimer(&off).Report() // a nil Timer does nothing
	if off.Len() != 0 {
		t.Errorf("without EPHEM_DEBUG_TIMING: %q", off.String())
	}

	t.Setenv("EPHEM_DEBUG_TIMING", "1")
	var out bytes.Buffer
	before := time.Now().UTC()
	tm := runtime.NewTimer(&out)
	tm.Mark("patch")
	tm.Mark("running")
	tm.Report()
	m := regexp.MustCompile(`^timing: patch [0-9.]+ms, running [0-9.]+ms; total [0-9.]+ms; started (\d\d:\d\d:\d\d\.\d{6})Z\n$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("report %q", out.String())
	}
	// The wall-clock start lines the phases up with the runtime's logs.
	started, err := time.Parse("15:04:05.000000", m[1])
	if err != nil {
		t.Fatal(err)
	}
	started = time.Date(before.Year(), before.Month(), before.Day(), started.Hour(), started.Minute(), started.Second(), started.Nanosecond(), time.UTC)
	if started.Before(before.Add(-12 * time.Hour)) {
		started = started.Add(24 * time.Hour) // made just before midnight
	}
	if d := started.Sub(before); d < -time.Millisecond || d > time.Second {
		t.Errorf("started %s, %v after the timer was made at %s", m[1], d, before.Format("15:04:05.000000"))
	}
}
