package runtime

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Timer records how long each phase of a session takes, printed when
// EPHEM_DEBUG_TIMING is set; it is how docs/benchmarks.md explains where
// the time goes. A nil *Timer does nothing.
type Timer struct {
	w      io.Writer
	last   time.Time
	start  time.Time
	phases []string
}

// NewTimer returns a Timer writing to w, or nil unless EPHEM_DEBUG_TIMING is set.
func NewTimer(w io.Writer) *Timer {
	if os.Getenv("EPHEM_DEBUG_TIMING") == "" {
		return nil
	}
	now := time.Now()
	return &Timer{w: w, last: now, start: now}
}

// Mark ends the phase called name.
func (t *Timer) Mark(name string) {
	if t == nil {
		return
	}
	now := time.Now()
	t.phases = append(t.phases, fmt.Sprintf("%s %.2fms", name, float64(now.Sub(t.last).Microseconds())/1000))
	t.last = now
}

// Report prints the phases, and the wall-clock time the first began, to
// line them up with the logs of the kubelet and the container runtime.
func (t *Timer) Report() {
	if t == nil {
		return
	}
	fmt.Fprintf(t.w, "timing: %s; total %.2fms; started %s\n", strings.Join(t.phases, ", "),
		float64(time.Since(t.start).Microseconds())/1000, t.start.UTC().Format("15:04:05.000000Z"))
}
