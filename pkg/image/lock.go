package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// flockUntil applies how (unix.LOCK_SH or unix.LOCK_EX) to f, waiting until
// the lock is granted (true), stop (if not nil) returns true (false), or ctx
// is done. It polls rather than blocking in the kernel so that a cancelled
// run stops waiting.
func flockUntil(ctx context.Context, f *os.File, how int, stop func() bool) (bool, error) {
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		if stop != nil && stop() {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("waiting for lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// tryFlock applies how without waiting and reports whether it was granted.
func tryFlock(f *os.File, how int) bool {
	return unix.Flock(int(f.Fd()), how|unix.LOCK_NB) == nil
}

// sameFile reports whether the open file f is still the file at path, that
// is, whether it has not been unlinked or replaced since it was opened.
func sameFile(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// lockFile opens path, creating it, and locks it with how. Lock files may
// be removed by Prune while it holds them exclusively, so lockFile retries
// until the file it holds is the one at path.
func lockFile(ctx context.Context, path string, how int) (*os.File, error) {
	f, err := lockFileUntil(ctx, path, how, nil)
	return f, err
}

// lockFileUntil is lockFile that gives up, returning nil, as soon as stop
// (if not nil) returns true.
func lockFileUntil(ctx context.Context, path string, how int, stop func() bool) (*os.File, error) {
	for {
		f, err := openLock(path)
		if err != nil {
			return nil, err
		}
		ok, err := flockUntil(ctx, f, how, stop)
		if err != nil || !ok {
			_ = f.Close()
			return nil, err
		}
		if sameFile(f, path) {
			return f, nil
		}
		_ = f.Close()
	}
}

// openLock opens the lock file at path, creating it. In a cache that cannot
// be written (a read-only mount, or a directory without write permission)
// it opens an existing lock file read-only instead: flock needs no write
// access, so the layers such a cache holds can still be pinned and served.
func openLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // a lock file inside the store
	if err != nil && readOnlyErr(err) {
		if ro, rerr := os.Open(path); rerr == nil { //nolint:gosec // a lock file inside the store
			return ro, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	return f, nil
}

// readOnlyErr reports whether err says that the cache cannot be written:
// a read-only file system, or no permission to.
func readOnlyErr(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// tempEntry is a directory or file under <dir>/tmp that its owner holds
// flocked for as long as it works on it; GC removes entries nobody holds.
type tempEntry struct {
	path string
	f    *os.File // holds the flock
}

// Temporary entries are created under a name starting with newPrefix and
// naming their creator (see ownerTag), locked, and only then renamed to
// their working name, so that GC never sees an entry of a live run
// unlocked. GC removes an unlocked newPrefix entry (left by a run killed
// between creating and locking it) at once if its creator is gone, and
// otherwise only once it is older than newGrace.
const (
	newPrefix = ".new-"
	newGrace  = time.Minute
)

// newTempDir creates and locks a fresh directory under tmpRoot, named after
// pattern as os.MkdirTemp would.
func newTempDir(tmpRoot, pattern string) (*tempEntry, error) {
	p, err := os.MkdirTemp(tmpRoot, newPrefix+ownerTag())
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	f, err := os.Open(p) //nolint:gosec // our own temporary directory
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	return lockAndName(f, p, tmpRoot, pattern)
}

// newTempFile creates and locks a fresh file under tmpRoot, named after
// pattern as os.CreateTemp would.
func newTempFile(tmpRoot, pattern string) (*tempEntry, error) {
	f, err := os.CreateTemp(tmpRoot, newPrefix+ownerTag())
	if err != nil {
		return nil, fmt.Errorf("creating temporary file: %w", err)
	}
	return lockAndName(f, f.Name(), tmpRoot, pattern)
}

// lockAndName locks f, the new entry at p, and renames it to a working name.
func lockAndName(f *os.File, p, tmpRoot, pattern string) (*tempEntry, error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		_ = os.RemoveAll(p)
		return nil, fmt.Errorf("locking temporary entry %s: %w", p, err)
	}
	name := filepath.Join(tmpRoot, pattern+strings.TrimPrefix(filepath.Base(p), newPrefix))
	if err := os.Rename(p, name); err != nil {
		_ = f.Close()
		_ = os.RemoveAll(p)
		return nil, fmt.Errorf("naming temporary entry: %w", err)
	}
	return &tempEntry{path: name, f: f}, nil
}

// ownerTag names this process as "<pid>.<start time>-", the start time in
// clock ticks since boot from /proc/self/stat, so that a reused PID is not
// mistaken for it.
var ownerTag = sync.OnceValue(func() string {
	pid := os.Getpid()
	return fmt.Sprintf("%d.%d-", pid, procStart(pid))
})

// ownerGone reports whether the name, which starts with an ownerTag, names
// a process that no longer exists (no such PID, or a PID since reused by a
// process started at another time). A name without a readable tag is not
// judged gone; it is left to the grace period. Stores are shared by ephem
// runs on one host, which see the same /proc.
func ownerGone(name string) bool {
	tag, _, ok := strings.Cut(name, "-")
	if !ok {
		return false
	}
	pidS, startS, ok := strings.Cut(tag, ".")
	if !ok {
		return false
	}
	pid, err1 := strconv.Atoi(pidS)
	start, err2 := strconv.ParseUint(startS, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 || start == 0 {
		return false
	}
	return procStart(pid) != start
}

// procStart returns the start time of process pid in clock ticks since
// boot (field 22 of /proc/<pid>/stat), or 0 if it cannot be read.
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may contain spaces
	// or parentheses; the fields after the last ')' start with field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0
	}
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// release removes whatever is left at the entry's path and drops the lock.
func (t *tempEntry) release() error {
	err := os.RemoveAll(t.path)
	_ = t.f.Close()
	return err
}

// collectTemp removes the entries under tmpRoot that no live process holds
// locked, returning the bytes freed.
func collectTemp(tmpRoot string) (int64, error) {
	ents, err := os.ReadDir(tmpRoot)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", tmpRoot, err)
	}
	var freed int64
	var errs []error
	for _, e := range ents {
		p := filepath.Join(tmpRoot, e.Name())
		if strings.HasPrefix(e.Name(), newPrefix) && !ownerGone(strings.TrimPrefix(e.Name(), newPrefix)) {
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < newGrace {
				continue // being created right now, most likely
			}
		}
		f, err := os.Open(p) //nolint:gosec // an entry of the store's tmp/
		if err != nil {
			continue // gone already, or never ours to lock
		}
		if tryFlock(f, unix.LOCK_EX) {
			freed += diskUsage(p)
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, fmt.Errorf("removing stale %s: %w", p, err))
			}
		}
		_ = f.Close()
	}
	return freed, errors.Join(errs...)
}

// diskUsage returns the bytes allocated to the tree at p, counting each
// hard-linked inode once. Errors are ignored: the figure is informational.
func diskUsage(p string) int64 {
	seen := map[uint64]bool{}
	var total int64
	_ = filepath.WalkDir(p, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil || seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		total += st.Blocks * 512
		return nil
	})
	return total
}
