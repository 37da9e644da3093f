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

// Use returns the running cluster for a test process, starting it with up.sh
// when it is down. While the process uses the cluster it holds the cluster's
// users lock shared, so down.sh waits for it. release drops the lock and, if
// a test process started the cluster and no other process uses it any more,
// stops it with down.sh.
func Use(ctx context.Context) (c *Cluster, release func(context.Context) error, err error) {
	dir := Dir()
	if err := os.MkdirAll("/run/lock", 0o755); err != nil {
		return nil, nil, fmt.Errorf("creating /run/lock: %w", err)
	}
	users, err := os.OpenFile(lockBase(dir)+".users", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the cluster's users lock: %w", err)
	}
	// Blocks while down.sh stops the cluster.
	if err := syscall.Flock(int(users.Fd()), syscall.LOCK_SH); err != nil {
		_ = users.Close()
		return nil, nil, fmt.Errorf("locking the cluster's users lock: %w", err)
	}
	c, started, err := Ensure(ctx)
	if err != nil {
		_ = users.Close()
		return nil, nil, err
	}
	if started {
		if err := os.WriteFile(filepath.Join(dir, startedByTest), nil, 0o644); err != nil {
			_ = users.Close()
			return nil, nil, fmt.Errorf("marking the cluster as started by a test: %w", err)
		}
	}
	return c, func(ctx context.Context) error { return releaseCluster(ctx, dir, users) }, nil
}

func releaseCluster(ctx context.Context, dir string, users *os.File) error {
	// Closing drops our shared lock; then see whether anyone else holds it.
	if err := users.Close(); err != nil {
		return fmt.Errorf("releasing the cluster's users lock: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, startedByTest)); err != nil {
		return nil // started by hand or by CI: leave it up
	}
	l, err := os.OpenFile(lockBase(dir)+".users", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening the cluster's users lock: %w", err)
	}
	defer l.Close()
	if err := syscall.Flock(int(l.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil // another test process uses it; the last one stops it
		}
		return fmt.Errorf("locking the cluster's users lock: %w", err)
	}
	return Down(ctx)
}
