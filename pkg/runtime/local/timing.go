package local

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// timer records how long each phase of a session takes, printed when
// EPHEM_DEBUG_TIMING is set; it is how docs/benchmarks.md explains where
// the time goes.
type timer struct {
	w      io.Writer
	last   time.Time
	start  time.Time
	phases []string
}

func newTimer(w io.Writer) *timer {
	if os.Getenv("EPHEM_DEBUG_TIMING") == "" {
		return nil
	}
	now := time.Now()
	return &timer{w: w, last: now, start: now}
}

// mark ends the phase called name.
func (t *timer) mark(name string) {
	if t == nil {
		return
	}
	now := time.Now()
	t.phases = append(t.phases, fmt.Sprintf("%s %.2fms", name, float64(now.Sub(t.last).Microseconds())/1000))
	t.last = now
}

func (t *timer) report() {
	if t == nil {
		return
	}
	fmt.Fprintf(t.w, "timing: %s; total %.2fms\n", strings.Join(t.phases, ", "), float64(time.Since(t.start).Microseconds())/1000)
}
