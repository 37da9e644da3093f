package image

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/ephem-dev/ephem/pkg/spec"
)

// PullOptions tune Ensure.
type PullOptions struct {
	// Policy says when to contact the registry; empty means spec.PullMissing.
	Policy PullPolicy
	// Insecure lists registry hosts (host or host:port) allowed over plain
	// HTTP; localhost, 127.0.0.0/8 and [::1] always are.
	Insecure []string
	// Platform selects the image of a multi-platform index; nil means the
	// host's (see HostPlatform).
	Platform *v1.Platform
	// Progress receives pull progress; nil means silent.
	Progress io.Writer
	// TTY says Progress is a terminal: one updating bar per layer instead of
	// plain lines.
	TTY bool
	// StallTimeout is how long a registry request may make no progress
	// before it is abandoned (and retried); 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// MaxImageSize caps what one pull may unpack, in bytes (0: no cap).
	MaxImageSize int64
	// MinFree is the free space an unpack leaves on the cache's file
	// system (0: DefaultMinFree; negative: no floor).
	MinFree int64
}

// pullJobs is how many layers are downloaded at once.
const pullJobs = 3

// Ensure returns the image ref names, unpacked, pulling what the cache lacks
// as o.Policy allows:
//
//   - spec.PullMissing uses the cached mapping of ref to a manifest without
//     any network access, and pulls only when ref is not cached;
//   - spec.PullAlways resolves ref on the registry each time, reusing cached
//     layers;
//   - spec.PullNever uses the cache only, failing with ErrNotFound.
//
// oci: and docker-archive: references are always resolved from their local
// source, which is cheap; their layers are cached like any other. An image
// that one overlay mount cannot take (no layers, or too many) fails with
// ErrUnsupported. Errors wrap one of the package's sentinels when their
// cause is known.
func (s *Store) Ensure(ctx context.Context, ref string, o PullOptions) (*Image, error) {
	r, err := ParseReference(ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := s.ensure(ctx, r, o)
	if err != nil {
		return nil, err
	}
	if err := s.checkMountable(img.Layers); err != nil {
		return nil, fmt.Errorf("using %s: %w", r, err)
	}
	return img, nil
}

// ensure is Ensure without the check that the image can be mounted.
func (s *Store) ensure(ctx context.Context, r Reference, o PullOptions) (*Image, error) {
	plat := HostPlatform()
	if o.Platform != nil {
		plat = *o.Platform
	}
	policy := o.Policy
	switch policy {
	case "":
		policy = spec.PullMissing
	case spec.PullMissing, spec.PullAlways, spec.PullNever:
	default:
		return nil, fmt.Errorf("pulling %s: unknown pull policy %q (want %s, %s or %s)",
			r, policy, spec.PullAlways, spec.PullMissing, spec.PullNever)
	}
	if !r.Local() && policy != spec.PullAlways {
		img, err := s.cached(ctx, r.String(), platformString(plat))
		if err == nil {
			return img, nil
		}
		if policy == spec.PullNever {
			return nil, notCached(r, plat, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	img, err := s.pull(ctx, r, plat, o)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, err)
	}
	return img, nil
}

// notCached explains a cache miss under PullNever; why is the lookup error.
func notCached(r Reference, plat v1.Platform, why error) error {
	err := fmt.Errorf("looking up %s in the image cache: %w: not cached for %s, and --pull never forbids pulling it; "+
		"pull it with --pull missing or --pull always", r, ErrNotFound, platformString(plat))
	if !errors.Is(why, os.ErrNotExist) {
		err = fmt.Errorf("%w (%v)", err, why) //nolint:errorlint // one sentinel is enough
	}
	return err
}

// pull resolves r on its source and makes sure every layer is unpacked.
func (s *Store) pull(ctx context.Context, r Reference, plat v1.Platform, o PullOptions) (*Image, error) {
	pr := newProgress(o.Progress, o.TTY)
	if !r.Local() {
		pr.start(r.String())
	}
	tm := newPullTiming()
	defer tm.report()
	src, err := resolve(ctx, r, plat, o.Insecure, o.StallTimeout)
	if err != nil {
		return nil, err
	}
	tm.mark("manifest")
	src.limit, src.timing = newUnpackLimit(o), tm
	if img, err := s.recordKnown(ctx, r.String(), platformString(plat), src.digest); err == nil {
		return img, nil // known manifest with every layer present: nothing to download
	}
	cfg, err := src.img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", src.dataErr(err))
	}
	if err := checkConfigPlatform(cfg, plat); err != nil {
		return nil, err
	}
	tm.mark("config")
	diffIDs := cfg.RootFS.DiffIDs
	layers, err := s.ensureLayers(ctx, src, diffIDs, pr)
	if err != nil {
		return nil, err
	}
	tm.mark("layers")
	defer tm.mark("record")
	platStr := platformString(plat)
	if cfg.OS != "" {
		platStr = platformString(v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant})
	}
	m := &manifestRecord{Digest: src.digest.String(), Platform: platStr, Config: cfg.Config, Layers: layers}
	return s.record(ctx, r.String(), platformString(plat), src.digest, m)
}

// dataErr classifies an error from reading image metadata: a network
// failure or registry error keeps its class, anything else is corrupt data.
func dataErr(err error) error {
	err = classify(err)
	if hasSentinel(err) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// ensureLayers unpacks every layer of src that the cache lacks, pullJobs at
// a time, the largest first, and returns their records, base first.
func (s *Store) ensureLayers(ctx context.Context, src *source, diffIDs []v1.Hash, pr *progress) ([]layerRecord, error) {
	layers, err := src.img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", src.dataErr(err))
	}
	if len(layers) != len(diffIDs) {
		return nil, fmt.Errorf("%w: the manifest lists %d layers but the config %d diff_ids", ErrCorrupt, len(layers), len(diffIDs))
	}
	if err := s.checkMountable(s.layerPaths(diffIDs)); err != nil {
		return nil, err // before downloading anything
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recs := make([]layerRecord, len(layers))
	errs := make([]error, len(layers))
	sem := make(chan struct{}, pullJobs)
	var wg sync.WaitGroup
	for _, i := range largestFirst(src, layers) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return
			}
			recs[i], errs[i] = s.ensureLayer(ctx, src, layers[i], diffIDs[i], pr)
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// Report the first failure that is not merely the cancellation it caused.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return recs, nil
}

// largestFirst returns the indexes of layers, the largest blob first: the
// pull takes at least as long as its largest layer, so that one must not
// wait for a free job behind small ones. Sizes come from the manifest; a
// source without them keeps the image's order.
func largestFirst(src *source, layers []v1.Layer) []int {
	idx := make([]int, len(layers))
	size := make([]int64, len(layers))
	for i, l := range layers {
		idx[i] = i
		if src.compressed {
			size[i], _ = l.Size()
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(size[b], size[a]) })
	return idx
}

// ensureLayer makes sure the layer with diffID is unpacked, and pins it.
// Unpacking happens under the layer's exclusive flock, so concurrent runs
// unpack it once: the others wait until its .done marker appears.
func (s *Store) ensureLayer(ctx context.Context, src *source, l v1.Layer, diffID v1.Hash, pr *progress) (layerRecord, error) {
	rec := layerRecord{DiffID: diffID.String()}
	if src.compressed {
		if d, err := l.Digest(); err == nil {
			rec.Digest = d.String()
		}
	}
	if diffID.Algorithm != "sha256" || len(diffID.Hex) != 64 {
		return rec, fmt.Errorf("%w: diffID %q is not a sha256 digest", ErrCorrupt, diffID)
	}
	done := func() bool {
		_, err := os.Stat(filepath.Join(s.layerDir(diffID.Hex), ".done"))
		return err == nil
	}
	for {
		ok, err := s.pinIfDone(ctx, diffID.Hex)
		if err != nil {
			return rec, err
		}
		if ok {
			dr, _ := s.readDone(diffID.Hex)
			rec.Unpacked = dr.Unpacked
			return rec, nil
		}
		// Wait for the exclusive lock, or for another run to finish.
		lk, err := lockFileUntil(ctx, s.layerLock(diffID.Hex), unix.LOCK_EX, done)
		if err != nil {
			return rec, err
		}
		if lk == nil || done() {
			if lk != nil {
				_ = lk.Close()
			}
			continue // pin it shared
		}
		_, err = s.unpackInto(ctx, src, l, rec, diffID, pr)
		_ = lk.Close() // then pin it shared, checking it is still there
		if err != nil {
			return rec, fmt.Errorf("unpacking layer %s: %w", shortDigest(diffID.String()), err)
		}
	}
}

// readDone reads a layer's completion marker.
func (s *Store) readDone(hex string) (doneRecord, bool) {
	var dr doneRecord
	err := readJSON(filepath.Join(s.layerDir(hex), ".done"), &dr)
	return dr, err == nil
}

// unpackInto downloads and unpacks layer l into a fresh directory under
// tmp/, verifies it, writes its .done marker and renames it into layers/.
// On failure nothing but tmp/ debris (removed here) is left.
func (s *Store) unpackInto(ctx context.Context, src *source, l v1.Layer, rec layerRecord, diffID v1.Hash, pr *progress) (doneRecord, error) {
	t, err := newTempDir(s.tmpDir(), "layer-")
	if err != nil {
		return doneRecord{}, err
	}
	defer func() { _ = t.release() }()
	fsDir := filepath.Join(t.path, "fs")
	if err := os.Mkdir(fsDir, 0o700); err != nil {
		return doneRecord{}, fmt.Errorf("creating layer directory: %w", err)
	}
	// The layer root becomes the container's "/", which everyone must be
	// able to search (a layer's "./" entry, if any, is not applied).
	if err := os.Chmod(fsDir, 0o755); err != nil { //nolint:gosec // see above
		return doneRecord{}, fmt.Errorf("creating layer directory: %w", err)
	}
	size := int64(-1)
	if src.compressed {
		if n, err := l.Size(); err == nil {
			size = n
		}
	}
	label := rec.Digest
	if label == "" {
		label = diffID.String()
	}
	bar := pr.layer(label, size)
	start := time.Now()
	stats, err := s.unpackBlob(ctx, src, l, rec, diffID, fsDir, bar)
	bar.finish(err)
	src.timing.layer(label, size, start)
	if err != nil {
		return doneRecord{}, err
	}
	// One syncfs, not an fsync per file: the layer's data is on disk before
	// its marker, so a crash never leaves a layer marked done whose files
	// are empty.
	if err := syncFS(t.path); err != nil {
		return doneRecord{}, err
	}
	dr := doneRecord{DiffID: diffID.String(), Unpacked: stats.Unpacked, Entries: stats.Entries}
	if err := writeDone(t.path, dr); err != nil {
		return dr, err
	}
	dst := s.layerDir(diffID.Hex)
	if err := os.Rename(t.path, dst); err != nil {
		if !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
			return dr, fmt.Errorf("moving layer into place: %w", err)
		}
		// An incomplete directory (no .done) is in the way; only an
		// outside hand can have put it there. Move it aside and retry.
		if err := s.discard(dst); err != nil {
			return dr, err
		}
		if err := os.Rename(t.path, dst); err != nil {
			return dr, fmt.Errorf("moving layer into place: %w", err)
		}
	}
	return dr, nil
}

// unpackBlob opens layer l and unpacks it into fsDir.
func (s *Store) unpackBlob(ctx context.Context, src *source, l v1.Layer, rec layerRecord, diffID v1.Hash, fsDir string, bar *bar) (layerStats, error) {
	sp := unpackSpec{diffID: diffID, limit: src.limit}
	var (
		rc  io.ReadCloser
		err error
	)
	if src.compressed {
		if mt, err := l.MediaType(); err == nil && !layerMediaTypeOK(mt) {
			return layerStats{}, fmt.Errorf("%w: layer media type %s is not a file system layer", ErrUnsupported, mt)
		}
		if sp.digest, err = v1.NewHash(rec.Digest); err != nil {
			return layerStats{}, fmt.Errorf("%w: layer digest %q: %w", ErrCorrupt, rec.Digest, err)
		}
		rc, err = l.Compressed()
	} else {
		rc, err = l.Uncompressed()
	}
	if err != nil {
		return layerStats{}, fmt.Errorf("opening layer blob: %w", src.dataErr(err))
	}
	defer func() { _ = rc.Close() }()
	sp.r = rc
	if bar != nil {
		sp.r = &countingReader{r: rc, b: bar}
	}
	return unpackLayer(ctx, fsDir, sp)
}

// syncFS flushes the file system holding dir to disk (syncfs(2)).
func syncFS(dir string) error {
	f, err := os.Open(dir) //nolint:gosec // a directory of the store
	if err != nil {
		return fmt.Errorf("syncing layer: %w", err)
	}
	defer func() { _ = f.Close() }()
	if err := unix.Syncfs(int(f.Fd())); err != nil { //nolint:gosec // a descriptor fits an int
		return fmt.Errorf("syncing layer: %w", err)
	}
	return nil
}

// writeDone writes the completion marker into a finished layer directory.
func writeDone(dir string, dr doneRecord) error {
	b, err := json.Marshal(dr)
	if err != nil {
		return fmt.Errorf("encoding layer marker: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".done"), b, 0o600); err != nil {
		return fmt.Errorf("writing layer marker: %w", err)
	}
	return nil
}

// discard moves path into a locked temporary directory and removes it.
func (s *Store) discard(path string) error {
	t, err := newTempDir(s.tmpDir(), "discard-")
	if err != nil {
		return err
	}
	defer func() { _ = t.release() }()
	if err := os.Rename(path, filepath.Join(t.path, "x")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}
