package image

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// pullTiming records the phases of one pull, printed on stderr when
// EPHEM_DEBUG_TIMING is set (as the local engine's own phases are): how
// long resolving, each layer and recording took, so that docs/benchmarks.md
// can say where a cold pull's time goes. A nil *pullTiming does nothing.
type pullTiming struct {
	w     io.Writer
	start time.Time
	last  time.Time

	mu     sync.Mutex
	phases []string
	layers []string
}

// newPullTiming returns a pullTiming, or nil unless EPHEM_DEBUG_TIMING is set.
func newPullTiming() *pullTiming {
	if os.Getenv("EPHEM_DEBUG_TIMING") == "" {
		return nil
	}
	now := time.Now()
	return &pullTiming{w: os.Stderr, start: now, last: now}
}

// mark ends the phase called name.
func (t *pullTiming) mark(name string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	t.phases = append(t.phases, fmt.Sprintf("%s %.2fms", name, msSince(t.last, now)))
	t.last = now
}

// layer records that a layer of size compressed bytes took from start to now.
func (t *pullTiming) layer(id string, size int64, start time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	t.layers = append(t.layers, fmt.Sprintf("%s %s +%.0fms %.0fms", shortDigest(id), humanSize(size),
		msSince(t.start, start), msSince(start, now)))
}

// report prints the phases, then the layers (start offset, duration).
func (t *pullTiming) report() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = fmt.Fprintf(t.w, "pull timing: %s; total %.2fms\n", strings.Join(t.phases, ", "), msSince(t.start, time.Now()))
	if len(t.layers) > 0 {
		_, _ = fmt.Fprintf(t.w, "pull layers: %s\n", strings.Join(t.layers, ", "))
	}
}

func msSince(a, b time.Time) float64 { return float64(b.Sub(a).Microseconds()) / 1000 }
