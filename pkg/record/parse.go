package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Event is one asciicast v2 event.
type Event struct {
	Time float64
	Code string
	Data string
}

// resizeData reports whether s is a resize event's data: "COLSxROWS".
func resizeData(s string) bool {
	w, h, ok := strings.Cut(s, "x")
	return ok && positiveDecimal(w) && positiveDecimal(h)
}

// positiveDecimal reports whether s is digits without a leading zero.
func positiveDecimal(s string) bool {
	return s != "" && s[0] != '0' && strings.Trim(s, "0123456789") == ""
}

// Parse reads an asciicast v2 file strictly: a header with version 2 and a
// positive size, then events that are 3-element arrays [time, code, data]
// with non-decreasing times, a known code ("o", "i", "r", "m") and, for
// "r", data of the form COLSxROWS.
func Parse(rd io.Reader) (Header, []Event, error) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	var h Header
	if !sc.Scan() {
		return h, nil, fmt.Errorf("reading the header: %w", firstErr(sc.Err(), io.ErrUnexpectedEOF))
	}
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
		return h, nil, fmt.Errorf("parsing the header: %w", err)
	}
	if h.Version != 2 || h.Width <= 0 || h.Height <= 0 {
		return h, nil, fmt.Errorf("header: version %d, size %dx%d: want version 2 and a positive size", h.Version, h.Width, h.Height)
	}
	var evs []Event
	last := 0.0
	for line := 2; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		ev, err := parseEvent(sc.Bytes())
		if err != nil {
			return h, evs, fmt.Errorf("line %d: %w", line, err)
		}
		if ev.Time < last {
			return h, evs, fmt.Errorf("line %d: time %f before the previous event's %f", line, ev.Time, last)
		}
		last = ev.Time
		evs = append(evs, ev)
	}
	return h, evs, sc.Err()
}

func parseEvent(b []byte) (Event, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return Event{}, fmt.Errorf("parsing an event: %w", err)
	}
	if len(raw) != 3 {
		return Event{}, fmt.Errorf("an event has %d elements, want 3", len(raw))
	}
	var ev Event
	if err := json.Unmarshal(raw[0], &ev.Time); err != nil || ev.Time < 0 {
		return ev, fmt.Errorf("event time %s: want a non-negative number", raw[0])
	}
	if err := json.Unmarshal(raw[1], &ev.Code); err != nil {
		return ev, fmt.Errorf("event code %s: want a string", raw[1])
	}
	if err := json.Unmarshal(raw[2], &ev.Data); err != nil {
		return ev, fmt.Errorf("event data %s: want a string", raw[2])
	}
	switch ev.Code {
	case Output, Input, "m":
	case Resize:
		if !resizeData(ev.Data) {
			return ev, fmt.Errorf("resize event %q: want COLSxROWS", ev.Data)
		}
	default:
		return ev, fmt.Errorf("unknown event code %q", ev.Code)
	}
	return ev, nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
