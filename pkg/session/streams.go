// Package session connects a user's terminal or pipes to a debug container's
// process: stream copying, raw mode, window-size propagation and detach keys.
// Backends hand it a terminal master or a set of pipes.
package session

import (
	"io"

	"golang.org/x/term"
)

// Streams are the user's standard streams.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Filer is a stream with a file descriptor behind it: an *os.File, or a
// wrapper of one (a session recorder) that keeps its terminal usable.
type Filer interface{ Fd() uintptr }

// fdOf returns the file descriptor behind v when it is a Filer.
func fdOf(v any) (int, bool) {
	f, ok := v.(Filer)
	if !ok {
		return 0, false
	}
	return int(f.Fd()), true
}

// IsTerminal says whether the input stream is a terminal.
func (s Streams) IsTerminal() bool {
	fd, ok := fdOf(s.In)
	return ok && term.IsTerminal(fd)
}

// ErrIsTerminal says whether the error stream is a terminal (for progress bars).
func (s Streams) ErrIsTerminal() bool {
	fd, ok := fdOf(s.Err)
	return ok && term.IsTerminal(fd)
}
