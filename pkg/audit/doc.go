// Package audit keeps ephem's audit log: one JSON object per line for every
// debug or attach session, appended with one write(2) to a file opened with
// O_APPEND so that concurrent sessions never interleave, rotated by size,
// and read back with a time filter by "ephem audit".
package audit
