package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Record is one session's audit line. The JSON names are the log's format:
// keep them stable.
type Record struct {
	// Time is when the session started.
	Time time.Time `json:"time"`
	// UID is the real user ID that ran ephem.
	UID int `json:"uid"`
	// User is UID's name, when it has one.
	User string `json:"user,omitempty"`
	// SudoUser is $SUDO_USER: who ran ephem through sudo.
	SudoUser string `json:"sudo_user,omitempty"`
	// Host is this host's name.
	Host string `json:"host"`
	// Verb is "debug" or "attach".
	Verb string `json:"verb"`
	// Backend is the backend that ran the session ("local", "kube").
	Backend string `json:"backend,omitempty"`
	// Target is the target as given.
	Target string `json:"target"`
	// ResolvedTarget is the target as the backend resolved it.
	ResolvedTarget string `json:"resolved_target,omitempty"`
	// Image is the debug image as given.
	Image string `json:"image,omitempty"`
	// ImageDigest is the digest of the image that ran, when known.
	ImageDigest string `json:"image_digest,omitempty"`
	// Profile is the security profile.
	Profile string `json:"profile,omitempty"`
	// Command is the command and its arguments (empty: the image's).
	Command []string `json:"command"`
	// TTY says whether the session had a terminal.
	TTY bool `json:"tty"`
	// ExitCode is ephem's exit code for the session.
	ExitCode int `json:"exit_code"`
	// Error is ephem's error message when the session failed.
	Error string `json:"error,omitempty"`
	// DurationMS is how long the session took, in milliseconds.
	DurationMS int64 `json:"duration_ms"`
	// SessionID is the backend's name for the session, when it has one.
	SessionID string `json:"session_id,omitempty"`
	// Recording is the asciicast file the session was recorded to.
	Recording string `json:"recording,omitempty"`
}

// MaxSize is the size past which Append rotates the log to FILE.1.
var MaxSize int64 = 10 << 20

// DefaultPath is the log's default place: /var/log/ephem/audit.jsonl for
// root, else $XDG_STATE_HOME/ephem/audit.jsonl (~/.local/state/ephem).
func DefaultPath() string {
	if os.Geteuid() == 0 {
		return "/var/log/ephem/audit.jsonl"
	}
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "ephem", "audit.jsonl")
}

// Caller fills the fields that describe who runs ephem, and where.
func Caller(r *Record) {
	r.UID = os.Getuid()
	if u, err := user.LookupId(strconv.Itoa(r.UID)); err == nil {
		r.User = u.Username
	}
	r.SudoUser = os.Getenv("SUDO_USER")
	r.Host, _ = os.Hostname()
}

// Append writes r to the log at path as one line, creating the file (0600)
// and its directory (0700), and rotating it first when it has grown past
// MaxSize. The line goes out in one write(2) on an O_APPEND descriptor,
// which a local file system applies whole: concurrent writers never
// interleave.
func Append(path string, r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the audit record: %w", err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the audit log's directory: %w", err)
	}
	f, err := open(path)
	if err != nil {
		return err
	}
	if f, err = rotate(path, f); err != nil {
		return err
	}
	_, werr := f.Write(line)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("writing the audit log %s: %w", path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("closing the audit log %s: %w", path, cerr)
	}
	return nil
}

func open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return f, nil
}

// rotate renames path to path.1 when f, open on it, has grown past MaxSize,
// and returns a descriptor on the new file. A lock file serialises
// rotators; one that finds the file already renamed by another reopens it.
// Writers still holding the old file finish their line in path.1.
func rotate(path string, f *os.File) (*os.File, error) {
	st, err := f.Stat()
	if err != nil || st.Size() < MaxSize {
		return f, nil //nolint:nilerr // an unreadable size skips rotation, not the record
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return f, nil //nolint:nilerr // rotation is best effort; the record is not
	}
	defer func() { _ = lock.Close() }()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return f, nil //nolint:nilerr // as above
	}
	defer func() { _ = unix.Flock(int(lock.Fd()), unix.LOCK_UN) }()
	cur, err := os.Stat(path)
	if err == nil && os.SameFile(cur, st) {
		if err := os.Rename(path, path+".1"); err != nil {
			return f, nil //nolint:nilerr // keep appending to the big file
		}
	}
	_ = f.Close()
	return open(path)
}

// Read returns the records of the log at path (its rotated part first)
// that started at or after since. Lines that do not parse (a crash mid-
// write) are skipped and counted in bad.
func Read(path string, since time.Time) (recs []Record, bad int, err error) {
	for _, p := range []string{path + ".1", path} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("reading the audit log: %w", err)
		}
		r, n := parse(bytes.NewReader(b), since)
		recs, bad = append(recs, r...), bad+n
	}
	return recs, bad, nil
}

func parse(rd io.Reader, since time.Time) ([]Record, int) {
	var recs []Record
	bad := 0
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad++
			continue
		}
		if !r.Time.Before(since) {
			recs = append(recs, r)
		}
	}
	return recs, bad
}
