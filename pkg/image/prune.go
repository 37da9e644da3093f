package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// GC removes the temporary entries left in tmp/ by killed runs: those no
// live process holds locked.
func (s *Store) GC(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := collectTemp(s.tmpDir()); err != nil {
		return fmt.Errorf("collecting garbage: %w", err)
	}
	return nil
}

// Prune removes the layers and manifest records that no cached reference
// uses, and stale temporary entries; with all, it first forgets every
// reference. It returns the bytes freed on disk. Layers pinned by a live
// Store (a running debug container, see Store) are kept.
func (s *Store) Prune(ctx context.Context, all bool) (int64, error) {
	freed, err := collectTemp(s.tmpDir())
	if err != nil {
		return freed, fmt.Errorf("pruning: %w", err)
	}
	used, n, err := s.pruneRecords(ctx, all)
	freed += n
	if err != nil {
		return freed, fmt.Errorf("pruning: %w", err)
	}
	n, err = s.pruneLayers(ctx, used)
	freed += n
	if err != nil {
		return freed, fmt.Errorf("pruning: %w", err)
	}
	return freed, nil
}

// pruneRecords removes every reference if all is set, then the manifest
// records no reference points to, and returns the layers (diffID hex) the
// remaining records use. Pulls do not write records meanwhile.
func (s *Store) pruneRecords(ctx context.Context, all bool) (map[string]bool, int64, error) {
	lk, err := s.recordsLock(ctx, unix.LOCK_EX)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = lk.Close() }()
	refs, err := s.readRefs()
	if err != nil {
		return nil, 0, err
	}
	if all {
		for p := range refs {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, 0, fmt.Errorf("removing %s: %w", p, err)
			}
		}
		refs = nil
	}
	return s.pruneManifests(refs)
}

// pruneManifests removes the manifest records no ref points to and returns
// the layers (diffID hex) of the others.
func (s *Store) pruneManifests(refs map[string]refRecord) (map[string]bool, int64, error) {
	keep := map[string]bool{}
	for _, rr := range refs {
		if h, err := v1.NewHash(rr.Digest); err == nil {
			keep[h.Hex] = true
		}
	}
	ents, err := os.ReadDir(s.manifestsDir())
	if err != nil {
		return nil, 0, fmt.Errorf("listing manifests: %w", err)
	}
	used := map[string]bool{}
	var freed int64
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		p := filepath.Join(s.manifestsDir(), e.Name())
		if ok && keep[hex] {
			var m manifestRecord
			if err := readJSON(p, &m); err != nil {
				return nil, freed, err
			}
			for _, l := range m.Layers {
				if h, err := v1.NewHash(l.DiffID); err == nil {
					used[h.Hex] = true
				}
			}
			continue
		}
		if fi, err := e.Info(); err == nil {
			freed += fi.Size()
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, freed, fmt.Errorf("removing manifest record: %w", err)
		}
	}
	return used, freed, nil
}

// pruneLayers removes the layers not in used that nobody holds locked,
// and lock files without a layer.
func (s *Store) pruneLayers(ctx context.Context, used map[string]bool) (int64, error) {
	ents, err := os.ReadDir(s.layersDir())
	if err != nil {
		return 0, fmt.Errorf("listing layers: %w", err)
	}
	var freed int64
	var errs []error
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return freed, err
		}
		hex := strings.TrimSuffix(e.Name(), ".lock")
		if used[hex] || (hex != e.Name() && hasEntry(ents, hex)) {
			continue // in use, or a lock file whose layer is handled on its own
		}
		n, err := s.pruneLayer(hex)
		freed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return freed, errors.Join(errs...)
}

// hasEntry reports whether ents holds a directory entry called name.
func hasEntry(ents []os.DirEntry, name string) bool {
	for _, e := range ents {
		if e.Name() == name {
			return true
		}
	}
	return false
}

// pruneLayer removes one layer and its lock file, unless a live process
// holds the lock (unpacking it, or pinning it for a running container).
func (s *Store) pruneLayer(hex string) (int64, error) {
	lp := s.layerLock(hex)
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // a lock file inside the store
	if err != nil {
		return 0, fmt.Errorf("locking layer %s: %w", hex, err)
	}
	defer func() { _ = f.Close() }()
	if !tryFlock(f, unix.LOCK_EX) || !sameFile(f, lp) {
		return 0, nil // in use
	}
	var freed int64
	dir := s.layerDir(hex)
	if _, err := os.Lstat(dir); err == nil {
		freed = diskUsage(dir)
		if err := s.discard(dir); err != nil {
			return 0, fmt.Errorf("removing layer %s: %w", hex, err)
		}
	}
	// Waiters on the old lock file notice it was unlinked and retry.
	if err := os.Remove(lp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return freed, fmt.Errorf("removing lock of layer %s: %w", hex, err)
	}
	return freed, nil
}
