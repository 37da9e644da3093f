// Package cli holds ephem's cobra commands, one file per verb. Commands
// follow kubectl's Options → Complete → Validate → Run shape: flags are
// validated without I/O, and only this package writes to the user's streams.
package cli
