package record

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ephem-dev/ephem/pkg/session"
)

// Header is an asciicast v2 file's first line.
type Header struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp,omitempty"`
	Command   string            `json:"command,omitempty"`
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

// Event codes.
const (
	Output = "o"
	Input  = "i"
	Resize = "r"
)

// Recorder writes one session's asciicast. Its methods may be called from
// several goroutines.
type Recorder struct {
	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	start  time.Time
	rows   uint16
	cols   uint16
	carry  map[string][]byte // an incomplete UTF-8 sequence per event code
	err    error
	closed bool
	events int
}

// Create starts a recording at path (created 0600, truncated) with h as its
// header; h.Version and h.Timestamp are filled in.
func Create(path string, h Header) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the recording: %w", err)
	}
	r, err := New(f, h)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	r.f = f
	return r, nil
}

// New starts a recording on w.
func New(w io.Writer, h Header) (*Recorder, error) {
	h.Version = 2
	r := &Recorder{w: bufio.NewWriter(w), start: time.Now(), carry: map[string][]byte{},
		rows: uint16(max(h.Height, 0)), cols: uint16(max(h.Width, 0))} //nolint:gosec // terminal sizes fit
	if h.Timestamp == 0 {
		h.Timestamp = r.start.Unix()
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding the recording's header: %w", err)
	}
	r.write(append(b, '\n'))
	return r, r.err
}

// Event records data as an event of the given code now. Output and input
// split inside a UTF-8 sequence are held until the sequence completes, so
// that every event is valid text.
func (r *Recorder) Event(code string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if c := r.carry[code]; len(c) > 0 {
		data = append(c, data...)
	}
	cut := incomplete(data)
	r.carry[code] = append([]byte(nil), data[len(data)-cut:]...)
	data = data[:len(data)-cut]
	if len(data) > 0 {
		r.event(code, string(data))
	}
}

// ObserveSize records a resize event when the size differs from the last.
func (r *Recorder) ObserveSize(rows, cols uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || (rows == r.rows && cols == r.cols) {
		return
	}
	r.rows, r.cols = rows, cols
	r.event(Resize, strconv.Itoa(int(cols))+"x"+strconv.Itoa(int(rows)))
}

func (r *Recorder) event(code, data string) {
	r.events++
	t := time.Since(r.start).Seconds()
	b, err := json.Marshal([]any{json.Number(strconv.FormatFloat(t, 'f', 6, 64)), code, data})
	if err != nil {
		r.err = err
		return
	}
	r.write(append(b, '\n'))
	if code != Output {
		return
	}
	// Output goes to disk as it comes: a recording is useful up to a crash.
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
}

func (r *Recorder) write(b []byte) {
	if _, err := r.w.Write(b); err != nil && r.err == nil {
		r.err = fmt.Errorf("writing the recording: %w", err)
	}
}

// Close flushes what is held (an incomplete UTF-8 tail as is) and closes
// the file; it returns the first write error.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.err
	}
	for _, code := range []string{Output, Input} {
		if c := r.carry[code]; len(c) > 0 {
			r.event(code, string(c))
		}
	}
	r.closed = true
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = fmt.Errorf("writing the recording: %w", err)
	}
	if r.f != nil {
		if err := r.f.Close(); err != nil && r.err == nil {
			r.err = fmt.Errorf("closing the recording: %w", err)
		}
	}
	return r.err
}

// Empty says whether nothing but the header was recorded.
func (r *Recorder) Empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events == 0
}

// incomplete returns the length of an unfinished UTF-8 sequence that ends
// b: 0 when b ends on a whole character or on bytes that never become one.
func incomplete(b []byte) int {
	for n := 1; n <= utf8.UTFMax-1 && n <= len(b); n++ {
		c := b[len(b)-n]
		if c < 0x80 {
			return 0
		}
		if !utf8.RuneStart(c) {
			continue
		}
		need := 0
		switch {
		case c&0xE0 == 0xC0:
			need = 2
		case c&0xF0 == 0xE0:
			need = 3
		case c&0xF8 == 0xF0:
			need = 4
		}
		if need > n {
			return n
		}
		return 0
	}
	return 0
}

// Streams returns s with its output (and, when input is set, its input)
// recorded by r. The wrappers keep the file descriptors of s, so raw mode
// and window sizes work as before; the sizes the session reads are
// recorded as resize events.
func Streams(s session.Streams, r *Recorder, input bool) session.Streams {
	out := &writer{w: s.Out, r: r}
	if f, ok := s.Out.(session.Filer); ok {
		s.Out = &fileWriter{writer: out, f: f}
	} else {
		s.Out = out
	}
	if input && s.In != nil {
		in := &reader{rd: s.In, r: r}
		if f, ok := s.In.(session.Filer); ok {
			s.In = &fileReader{reader: in, f: f}
		} else {
			s.In = in
		}
	}
	return s
}

type writer struct {
	w io.Writer
	r *Recorder
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if n > 0 {
		w.r.Event(Output, p[:n])
	}
	return n, err
}

// ObserveSize implements session.SizeObserver.
func (w *writer) ObserveSize(rows, cols uint16) { w.r.ObserveSize(rows, cols) }

type fileWriter struct {
	*writer
	f session.Filer
}

func (w *fileWriter) Fd() uintptr { return w.f.Fd() }

type reader struct {
	rd io.Reader
	r  *Recorder
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.rd.Read(p)
	if n > 0 {
		r.r.Event(Input, p[:n])
	}
	return n, err
}

type fileReader struct {
	*reader
	f session.Filer
}

func (r *fileReader) Fd() uintptr { return r.f.Fd() }

var (
	_ session.SizeObserver = (*writer)(nil)
	_ session.Filer        = (*fileWriter)(nil)
	_ session.Filer        = (*fileReader)(nil)
)
