package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockBase is the path prefix of the cluster's locks in /run/lock, as
// hack/cluster/lib.sh computes it from the state directory.
func lockBase(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "/run/lock/ephem-cluster-" + hex.EncodeToString(sum[:])[:12]
}

// startedByTest marks a cluster that a test process started (and so the last
// test process using it stops).
const startedByTest = "started-by-test"

// Lease is a test process's use of the cluster: it holds the cluster's users
// lock shared, so down.sh (and other leases going exclusive) wait for it.
type Lease struct {
	dir           string
	f             *os.File
	startedByTest bool // by Down, for Up
}

// Use returns the running cluster for a test process, starting it with up.sh
// when it is down, and the process's lease on it. Release the lease when the
// process is done with the cluster.
func Use(ctx context.Context) (*Cluster, *Lease, error) {
	dir := Dir()
	if err := os.MkdirAll("/run/lock", 0o755); err != nil {
		return nil, nil, fmt.Errorf("creating /run/lock: %w", err)
	}
	f, err := os.OpenFile(lockBase(dir)+".users", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the cluster's users lock: %w", err)
	}
	l := &Lease{dir: dir, f: f}
	// Waits while down.sh stops the cluster.
	if err := l.lock(ctx, syscall.LOCK_SH); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	c, started, err := Ensure(ctx)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if started {
		if err := os.WriteFile(filepath.Join(dir, startedByTest), nil, 0o644); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("marking the cluster as started by a test: %w", err)
		}
	}
	return c, l, nil
}

// Exclusive waits until no other test process uses the cluster and keeps
// new ones out, for a test that stops or restarts it. Shared lets them in
// again. Converting a flock is not atomic, so a waiting down.sh may stop the
// cluster before Exclusive returns: check the cluster afterwards (Ensure).
func (l *Lease) Exclusive(ctx context.Context) error { return l.lock(ctx, syscall.LOCK_EX) }

// Shared turns an exclusive lease back into a shared one.
func (l *Lease) Shared(ctx context.Context) error { return l.lock(ctx, syscall.LOCK_SH) }

// Down stops the cluster with down.sh, remembering whether a test process
// had started it, so that Up keeps the last test process's duty to stop it.
// Hold the lease exclusively (Exclusive) around Down and Up.
func (l *Lease) Down(ctx context.Context) error {
	_, err := os.Stat(filepath.Join(l.dir, startedByTest))
	l.startedByTest = err == nil
	return Down(ctx)
}

// Up starts the cluster again with up.sh after Down.
func (l *Lease) Up(ctx context.Context) (*Cluster, error) {
	c, err := Up(ctx)
	if err != nil {
		return nil, err
	}
	if l.startedByTest {
		if err := os.WriteFile(filepath.Join(l.dir, startedByTest), nil, 0o644); err != nil {
			return nil, fmt.Errorf("marking the cluster as started by a test: %w", err)
		}
	}
	return c, nil
}

// Release ends the lease. If a test process started the cluster and no other
// process uses it any more, Release stops it with down.sh; a cluster started
// by hand or by CI stays up.
func (l *Lease) Release(ctx context.Context) error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("releasing the cluster's users lock: %w", err)
	}
	if _, err := os.Stat(filepath.Join(l.dir, startedByTest)); err != nil {
		return nil
	}
	f, err := os.OpenFile(lockBase(l.dir)+".users", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening the cluster's users lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil // another test process uses it; the last one stops it
		}
		return fmt.Errorf("locking the cluster's users lock: %w", err)
	}
	return Down(ctx)
}

// lock takes (or converts to) how, polling so that ctx can end the wait.
func (l *Lease) lock(ctx context.Context, how int) error {
	for {
		err := syscall.Flock(int(l.f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("locking the cluster's users lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the other test processes using the cluster: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
