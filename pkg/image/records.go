package image

import (
	"context"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// recordsLock locks <dir>/records.lock: shared while a pull writes its
// manifest record and reference, exclusive while Prune decides which
// manifest records are unreferenced, so that it never removes one whose
// reference is being written.
func (s *Store) recordsLock(ctx context.Context, how int) (*os.File, error) {
	return lockFileUntil(ctx, filepath.Join(s.dir, "records.lock"), how, nil)
}

// recordKnown records that ref resolves to the already cached manifest d
// and returns its image, or fails if d or one of its layers is missing. A
// cache that cannot be written still returns the image, unrecorded.
func (s *Store) recordKnown(ctx context.Context, ref, platform string, d v1.Hash) (*Image, error) {
	lk, err := s.recordsLock(ctx, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lk.Close() }()
	img, err := s.imageFor(ctx, ref, d)
	if err != nil {
		return nil, err
	}
	if err := s.writeRef(ref, platform, d); err != nil && !readOnlyErr(err) {
		return nil, err
	}
	return img, nil
}

// record writes the manifest record m of d and the reference ref to it,
// and returns the image.
func (s *Store) record(ctx context.Context, ref, platform string, d v1.Hash, m *manifestRecord) (*Image, error) {
	lk, err := s.recordsLock(ctx, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lk.Close() }()
	if err := s.writeJSON(s.manifestPath(d), m); err != nil {
		return nil, err
	}
	if err := s.writeRef(ref, platform, d); err != nil {
		return nil, err
	}
	return s.imageFor(ctx, ref, d)
}

// writeRef records that ref, for platform, resolves to digest d, and that
// it was used now. An unchanged record is only touched.
func (s *Store) writeRef(ref, platform string, d v1.Hash) error {
	p := s.refPath(ref, platform)
	var old refRecord
	if err := readJSON(p, &old); err == nil && old.Ref == ref && old.Digest == d.String() {
		now := time.Now()
		if err := os.Chtimes(p, now, now); err == nil {
			return nil
		}
	}
	return s.writeJSON(p, refRecord{Ref: ref, Platform: platform, Digest: d.String()})
}
