package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/target"
)

// SessionsDir holds a socket and a description per interactive local
// session, so a detached one can be listed and attached to again.
var SessionsDir = "/run/ephem/sessions"

// Session describes a local debug session.
type Session struct {
	ID      string    `json:"id"`
	Target  string    `json:"target"`
	Image   string    `json:"image"`
	Command []string  `json:"command"`
	Started time.Time `json:"started"`
	// Relay is the host PID of the session's relay and RelayStart its
	// start time in clock ticks, which tell a live session from a stale one.
	Relay      int    `json:"relay"`
	RelayStart uint64 `json:"relayStart"`
}

// listen creates the rendezvous socket of a new session. init inherits the
// listener; the files are removed when the session ends attached, and by
// ListSessions or GC once it has ended detached.
func listen() (string, *os.File, error) {
	if err := os.MkdirAll(SessionsDir, 0o700); err != nil {
		return "", nil, fmt.Errorf("%w: creating %s: %w", runtime.ErrOS, SessionsDir, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sockPath(id), Net: "unixpacket"})
	if err != nil {
		return "", nil, fmt.Errorf("%w: listening for reattachment: %w", runtime.ErrOS, err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	l.Close()
	if err != nil {
		return "", nil, fmt.Errorf("%w: listening for reattachment: %w", runtime.ErrOS, err)
	}
	return id, f, nil
}

func sockPath(id string) string { return filepath.Join(SessionsDir, id+".sock") }
func descPath(id string) string { return filepath.Join(SessionsDir, id+".json") }

func removeSession(id string) {
	_ = os.Remove(sockPath(id))
	_ = os.Remove(descPath(id))
}

func writeSession(s Session) error {
	s.RelayStart = startTime(s.Relay)
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(descPath(s.ID), b, 0o600)
}

// startTime is field 22 of /proc/PID/stat, 0 when the process is gone or
// a zombie.
func startTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// ListSessions returns the live local sessions, removing the records of
// ended ones (a session that ends detached cannot remove its own: its init
// may have left the host's user namespace). Debug and GC call it too.
func ListSessions() ([]Session, error) {
	matches, err := filepath.Glob(filepath.Join(SessionsDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Session
	for _, m := range matches {
		var s Session
		b, err := os.ReadFile(m)
		if err != nil || json.Unmarshal(b, &s) != nil || s.ID == "" {
			continue
		}
		if s.RelayStart == 0 || startTime(s.Relay) != s.RelayStart {
			removeSession(s.ID)
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// List implements runtime.Lister: this host's live interactive sessions,
// those of t only when t names a target.
func (e *Engine) List(_ context.Context, t target.Ref) ([]runtime.Session, error) {
	// Anyone may list: a user other than root has its own SessionsDir
	// (rootless.go).
	sessions, err := ListSessions()
	if err != nil {
		return nil, fmt.Errorf("%w: listing local sessions: %w", runtime.ErrOS, err)
	}
	var out []runtime.Session
	for _, s := range sessions {
		if t.Raw != "" && s.Target != t.Raw {
			continue
		}
		out = append(out, runtime.Session{ID: s.ID, Target: s.Target, Image: s.Image, Command: s.Command,
			State: "Running", Started: s.Started})
	}
	return out, nil
}

// GC implements runtime.Cleaner: it removes the records of sessions that
// ended while detached.
func (e *Engine) GC(context.Context) error {
	if _, err := ListSessions(); err != nil {
		return fmt.Errorf("%w: pruning session records: %w", runtime.ErrOS, err)
	}
	return nil
}

// Attach implements runtime.Attacher: it reattaches the user's terminal to
// the detached local session t names (its ID) and returns like Debug: nil,
// an *ExitError with the command's code, or nil after detaching again.
func (e *Engine) Attach(ctx context.Context, t target.Ref, _ bool, streams session.Streams) error {
	id := t.Name
	// Anyone may attach: a user other than root reaches only its own
	// SessionsDir (rootless.go).
	if strings.ContainsAny(id, "/.") || id == "" {
		return fmt.Errorf("%w: %q is not a local session ID: see ephem ls", target.ErrInvalid, id)
	}
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sockPath(id), Net: "unixpacket"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errConnRefused) {
			removeSession(id)
			return fmt.Errorf("%w: no running local session %s: see ephem ls", target.ErrNotFound, id)
		}
		return fmt.Errorf("%w: connecting to session %s: %w", runtime.ErrOS, id, err)
	}
	f, err := c.File()
	_ = c.Close()
	if err != nil {
		return fmt.Errorf("%w: connecting to session %s: %w", runtime.ErrOS, id, err)
	}
	s := &sess{e: e, ctl: &conn{f: f}, id: id, c: specTTY(), streams: streams}
	err = s.relay(ctx, nil, "session "+id)
	if !s.detached() {
		removeSession(id)
	}
	return err
}
