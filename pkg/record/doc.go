// Package record writes a terminal session as an asciicast v2 file, the
// format "asciinema play" replays: a JSON header line, then one JSON array
// per event — [seconds, "o", output], [seconds, "r", "COLSxROWS"] and, when
// asked, [seconds, "i", input]. It wraps a session's streams, so it records
// the same way on every backend.
package record
