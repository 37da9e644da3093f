package image

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress reports a pull on an io.Writer: on a terminal one bar per layer,
// redrawn in place; otherwise a plain line when each layer starts and ends.
// A nil *progress, or one with a nil writer, reports nothing.
type progress struct {
	w   io.Writer
	tty bool

	mu    sync.Mutex
	bars  []*bar
	drawn int       // lines drawn by the last redraw
	last  time.Time // time of the last redraw
}

// bar is the progress of one layer download.
type bar struct {
	p     *progress
	id    string // short digest
	total int64  // compressed bytes; <= 0 if unknown
	cur   int64
	done  bool
}

// barWidth is the number of cells between the brackets of a bar.
const barWidth = 30

// redrawEvery limits terminal redraws.
const redrawEvery = 100 * time.Millisecond

func newProgress(w io.Writer, tty bool) *progress {
	if w == nil {
		return nil
	}
	return &progress{w: w, tty: tty}
}

// start announces the pull of ref.
func (p *progress) start(ref string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = fmt.Fprintf(p.w, "pulling %s\n", ref)
}

// layer starts the bar of the layer with the given digest and size.
func (p *progress) layer(digest string, total int64) *bar {
	if p == nil {
		return nil
	}
	b := &bar{p: p, id: shortDigest(digest), total: total}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bars = append(p.bars, b)
	if p.tty {
		p.redraw(true)
	} else {
		_, _ = fmt.Fprintf(p.w, "layer %s %s pulling\n", b.id, humanSize(total))
	}
	return b
}

// add records n more bytes read.
func (b *bar) add(n int) {
	if b == nil {
		return
	}
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	b.cur += int64(n)
	if b.p.tty {
		b.p.redraw(false)
	}
}

// finish marks the layer as unpacked, or failed if err is not nil.
func (b *bar) finish(err error) {
	if b == nil {
		return
	}
	p := b.p
	p.mu.Lock()
	defer p.mu.Unlock()
	b.done = true
	if p.tty {
		p.redraw(true)
		return
	}
	if err != nil {
		_, _ = fmt.Fprintf(p.w, "layer %s failed\n", b.id)
		return
	}
	_, _ = fmt.Fprintf(p.w, "layer %s %s done\n", b.id, humanSize(b.cur))
}

// redraw rewrites all bars in place. Callers hold p.mu.
func (p *progress) redraw(force bool) {
	if !force && time.Since(p.last) < redrawEvery {
		return
	}
	p.last = time.Now()
	var sb strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA", p.drawn) // cursor up to the first bar
	}
	for _, b := range p.bars {
		sb.WriteString("\r\x1b[2K")
		sb.WriteString(b.String())
		sb.WriteByte('\n')
	}
	p.drawn = len(p.bars)
	_, _ = io.WriteString(p.w, sb.String())
}

// String renders the bar, e.g. "sha256:abcd1234ef56 [=====>    ] 3.1/5.0 MB".
func (b *bar) String() string {
	if b.total <= 0 {
		state := ""
		if b.done {
			state = " done"
		}
		return fmt.Sprintf("%s %s%s", b.id, humanSize(b.cur), state)
	}
	frac := min(float64(b.cur)/float64(b.total), 1)
	fill := int(frac * barWidth)
	cells := strings.Repeat("=", fill)
	if fill < barWidth {
		cells += ">" + strings.Repeat(" ", barWidth-fill-1)
	}
	if b.done {
		cells = strings.Repeat("=", barWidth)
	}
	unit, div := sizeUnit(b.total)
	return fmt.Sprintf("%s [%s] %.1f/%.1f %s", b.id, cells, float64(b.cur)/div, float64(b.total)/div, unit)
}

// shortDigest abbreviates "sha256:<64 hex>" to "sha256:<12 hex>".
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// sizeUnit picks the decimal unit in which n reads best.
func sizeUnit(n int64) (string, float64) {
	switch {
	case n >= 1e9:
		return "GB", 1e9
	case n >= 1e6:
		return "MB", 1e6
	case n >= 1e3:
		return "kB", 1e3
	}
	return "B", 1
}

// humanSize formats n bytes, e.g. "1.2 MB"; negative sizes are unknown.
func humanSize(n int64) string {
	if n < 0 {
		return "? B"
	}
	unit, div := sizeUnit(n)
	if div == 1 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", float64(n)/div, unit)
}

// countingReader reports the bytes read through it to a bar.
type countingReader struct {
	r io.Reader
	b *bar
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.b.add(n)
	return n, err
}
