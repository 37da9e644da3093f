package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// readRefs returns every ref record with the path it was read from.
func (s *Store) readRefs() (map[string]refRecord, error) {
	ents, err := os.ReadDir(s.refsDir())
	if err != nil {
		return nil, fmt.Errorf("listing cached references: %w", err)
	}
	out := map[string]refRecord{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(s.refsDir(), e.Name())
		var rr refRecord
		if err := readJSON(p, &rr); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, fmt.Errorf("listing cached references: %w", err)
		}
		out[p] = rr
	}
	return out, nil
}

// List returns the cached references, sorted by reference and platform.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	refs, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(refs))
	for p, rr := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := v1.NewHash(rr.Digest)
		if err != nil {
			return nil, fmt.Errorf("listing cached references: %w: %s: %w", ErrCorrupt, p, err)
		}
		e := Entry{Ref: rr.Ref, Platform: rr.Platform, Digest: d}
		if fi, err := os.Stat(p); err == nil {
			e.LastUsed = fi.ModTime()
		}
		if m, err := s.readManifest(d); err == nil {
			for _, l := range m.Layers {
				e.Size += l.Unpacked
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ref != out[j].Ref {
			return out[i].Ref < out[j].Ref
		}
		return out[i].Platform < out[j].Platform
	})
	return out, nil
}

// Remove forgets refs (every platform each was pulled for). A ref may also
// be a manifest digest, in full (sha256:...) or as a prefix of at least 12
// hex digits, as List shows it; that forgets every reference to it. Layers
// stay until Prune. A ref that is not cached yields an error wrapping
// ErrNotFound; the others are still removed.
func (s *Store) Remove(ctx context.Context, refs ...string) error {
	var errs []error
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.remove(r); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

// digestLike reports whether s is what Remove accepts as a digest: 12 to
// 64 lowercase hex digits, after an optional "sha256:".
func digestLike(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	return len(s) >= 12 && len(s) <= 64 && strings.Trim(s, "0123456789abcdef") == ""
}

func (s *Store) remove(r string) error {
	var matches []string
	ref, perr := ParseReference(r, nil)
	if perr == nil {
		var err error
		if matches, err = filepath.Glob(filepath.Join(s.refsDir(), refKey(ref.String())+"_*.json")); err != nil {
			return err
		}
	}
	if len(matches) == 0 && digestLike(r) {
		refs, err := s.readRefs()
		if err != nil {
			return err
		}
		prefix := "sha256:" + strings.TrimPrefix(r, "sha256:")
		for p, rr := range refs {
			if strings.HasPrefix(rr.Digest, prefix) {
				matches = append(matches, p)
			}
		}
	}
	switch {
	case len(matches) == 0 && perr != nil:
		return perr
	case len(matches) == 0:
		return fmt.Errorf("%w: %s is not cached (see ephem images ls)", ErrNotFound, ref)
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
