package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/ephem-dev/ephem/pkg/spec"
)

// PullPolicy says when Ensure contacts the registry.
type PullPolicy = spec.PullPolicy

// DirEnv is the environment variable that overrides DefaultDir.
const DirEnv = "EPHEM_CACHE_DIR"

// DefaultDir returns $EPHEM_CACHE_DIR, else /var/lib/ephem for root and
// the per-user cache ($XDG_CACHE_HOME/ephem, default ~/.cache/ephem) for
// anyone else (see userCacheDir).
func DefaultDir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	if d, ok := userCacheDir(); ok {
		return d
	}
	return "/var/lib/ephem"
}

// Store is an image cache directory. A Store is safe for concurrent use,
// and several processes may share one directory.
//
// Layers returned by Ensure stay pinned (a shared flock on their lock file)
// until Close or the end of the process, so that Prune in another process
// never removes the lowerdirs of a running debug container.
type Store struct {
	dir string

	mu   sync.Mutex
	pins map[string]*os.File // diffID hex → lock file held shared
}

// Image is a pulled and unpacked image.
type Image struct {
	// Ref is the normalized reference, e.g.
	// index.docker.io/library/busybox:latest or oci:/abs/dir:tag.
	Ref string
	// Digest is the manifest digest; for docker-archive: sources, which have
	// no registry manifest, it is the config digest (Docker's image ID).
	Digest v1.Hash
	// Platform is the platform of the image, e.g. linux/amd64.
	Platform string
	// Config is the runtime configuration: Entrypoint, Cmd, Env, WorkingDir, User.
	Config v1.Config
	// Layers are the absolute paths of the unpacked layer trees, base layer
	// first, for use as overlayfs lowerdirs (which list the top layer first).
	// A layer the image repeats appears once, at its topmost position.
	Layers []string
}

// Entry describes one cached reference.
type Entry struct {
	// Ref is the normalized reference.
	Ref string
	// Platform is the platform the reference was resolved for.
	Platform string
	// Digest is the manifest digest (config digest for docker-archive:).
	Digest v1.Hash
	// Size is the unpacked size in bytes of the image's layers (the sum of
	// their file sizes); layers shared with other images count in each.
	Size int64
	// LastUsed is when Ensure last returned the image.
	LastUsed time.Time
}

// refRecord is the content of refs/<key>.json. Its mtime is the last use.
type refRecord struct {
	Ref      string `json:"ref"`
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
}

// manifestRecord is the content of manifests/sha256/<hex>.json: all Ensure
// needs to return a cached image.
type manifestRecord struct {
	Digest   string        `json:"digest"`
	Platform string        `json:"platform"`
	Config   v1.Config     `json:"config"`
	Layers   []layerRecord `json:"layers"`
}

// layerRecord describes one layer of a manifestRecord, base first.
type layerRecord struct {
	DiffID   string `json:"diffID"`
	Digest   string `json:"digest,omitempty"` // compressed digest, if known
	Unpacked int64  `json:"unpacked"`         // sum of file sizes
}

// doneRecord is the content of a layer's .done marker.
type doneRecord struct {
	DiffID   string `json:"diffID"`
	Unpacked int64  `json:"unpacked"`
	Entries  int    `json:"entries"`
}

// Open opens the cache at dir (DefaultDir if empty), creating its layout.
// It is cheap: besides creating directories it only lists tmp/, removing
// entries left by killed runs.
func Open(dir string) (*Store, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening image cache %s: %w", dir, err)
	}
	s := &Store{dir: abs, pins: map[string]*os.File{}}
	for _, d := range []string{s.layersDir(), s.manifestsDir(), s.refsDir(), s.RunDir()} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, cacheDirError(abs, err)
		}
	}
	if err := os.MkdirAll(s.tmpDir(), 0o700); err != nil {
		return nil, cacheDirError(abs, err)
	}
	// Best effort: a failure to collect debris must not fail every run.
	_, _ = collectTemp(s.tmpDir())
	return s, nil
}

// cacheDirError says why dir cannot be a cache, and what to do.
func cacheDirError(dir string, err error) error {
	hint := "choose another --cache-dir"
	switch {
	case errors.Is(err, fs.ErrPermission):
		hint = "run as root, or choose a --cache-dir you may write"
	case errors.Is(err, unix.EROFS):
		hint = "the file system is read-only: choose a --cache-dir on a writable one (a complete read-only cache is used as it is)"
	}
	return fmt.Errorf("%w: cache directory %s: %w: %s", ErrLocalConfig, dir, unwrapPath(err), hint)
}

// unwrapPath drops the operation and path of a *fs.PathError, which the
// message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Dir returns the cache directory.
func (s *Store) Dir() string { return s.dir }

// RunDir returns <dir>/run, an empty directory on which the local engine
// mounts a private tmpfs inside its own mount namespace.
func (s *Store) RunDir() string { return filepath.Join(s.dir, "run") }

// Pins returns the open lock files pinning the layers Ensure returned. A
// process that inherits them keeps those layers from Prune as long as it
// runs: the local engine hands them to a debug container's init, so a
// session that outlives ephem keeps its image.
func (s *Store) Pins() []*os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*os.File, 0, len(s.pins))
	for _, f := range s.pins {
		out = append(out, f)
	}
	return out
}

// Close releases the layer pins taken by Ensure.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, f := range s.pins {
		_ = f.Close()
		delete(s.pins, k)
	}
	return nil
}

func (s *Store) layersDir() string             { return filepath.Join(s.dir, "layers", "sha256") }
func (s *Store) layerDir(hex string) string    { return filepath.Join(s.layersDir(), hex) }
func (s *Store) layerFS(hex string) string     { return filepath.Join(s.layersDir(), hex, "fs") }
func (s *Store) layerLock(hex string) string   { return filepath.Join(s.layersDir(), hex+".lock") }
func (s *Store) manifestsDir() string          { return filepath.Join(s.dir, "manifests", "sha256") }
func (s *Store) manifestPath(h v1.Hash) string { return filepath.Join(s.manifestsDir(), h.Hex+".json") }
func (s *Store) refsDir() string               { return filepath.Join(s.dir, "refs") }
func (s *Store) tmpDir() string                { return filepath.Join(s.dir, "tmp") }

// refPath returns the file mapping ref, resolved for platform, to a digest.
func (s *Store) refPath(ref, platform string) string {
	return filepath.Join(s.refsDir(), refKey(ref)+"_"+strings.ReplaceAll(platform, "/", "-")+".json")
}

// refKey returns the file-name prefix shared by all of ref's platforms.
func refKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(sum[:16])
}

// writeJSON atomically replaces path with v encoded as JSON.
func (s *Store) writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
	}
	t, err := newTempFile(s.tmpDir(), "json-")
	if err != nil {
		return err
	}
	defer func() { _ = t.release() }()
	if _, err := t.f.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(t.path, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path) //nolint:gosec // a record inside the store
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: decoding %s: %w", ErrCorrupt, path, err)
	}
	return nil
}

// readManifest reads the manifest record of digest d.
func (s *Store) readManifest(d v1.Hash) (*manifestRecord, error) {
	var m manifestRecord
	if err := readJSON(s.manifestPath(d), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// cached returns the image that ref, resolved for platform, maps to, if the
// mapping, the manifest record and every layer are present. It reads two
// small files and stats one marker per layer.
func (s *Store) cached(ctx context.Context, ref, platform string) (*Image, error) {
	rp := s.refPath(ref, platform)
	var rr refRecord
	if err := readJSON(rp, &rr); err != nil {
		return nil, err
	}
	d, err := v1.NewHash(rr.Digest)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, rp, err)
	}
	img, err := s.imageFor(ctx, ref, d)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	_ = os.Chtimes(rp, now, now) // last use; best effort
	return img, nil
}

// imageFor returns the cached image with manifest digest d, pinning its
// layers, or an error if any part is missing.
func (s *Store) imageFor(ctx context.Context, ref string, d v1.Hash) (*Image, error) {
	m, err := s.readManifest(d)
	if err != nil {
		return nil, err
	}
	img := &Image{Ref: ref, Digest: d, Platform: m.Platform, Config: m.Config}
	for _, l := range m.Layers {
		h, err := v1.NewHash(l.DiffID)
		if err != nil {
			return nil, fmt.Errorf("%w: manifest record %s: %w", ErrCorrupt, d, err)
		}
		ok, err := s.pinIfDone(ctx, h.Hex)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("layer %s: %w", h, os.ErrNotExist)
		}
		img.Layers = append(img.Layers, s.layerFS(h.Hex))
	}
	img.Layers = keepLast(img.Layers)
	return img, nil
}

// keepLast drops all but the topmost occurrence of each layer: overlayfs
// refuses a lowerdir listed twice, and an earlier copy of a layer is wholly
// shadowed by a later one (its entries, whiteouts and opaque directories
// are all repeated above it), so the merged tree is the same.
func keepLast(layers []string) []string {
	last := map[string]int{}
	for i, l := range layers {
		last[l] = i
	}
	out := layers[:0:0]
	for i, l := range layers {
		if last[l] == i {
			out = append(out, l)
		}
	}
	return out
}

// pinIfDone pins the layer and reports whether it is complete. A layer this
// Store pinned before is known complete without a system call.
func (s *Store) pinIfDone(ctx context.Context, hex string) (bool, error) {
	s.mu.Lock()
	_, pinned := s.pins[hex]
	s.mu.Unlock()
	if pinned {
		return true, nil
	}
	f, err := lockFile(ctx, s.layerLock(hex), unix.LOCK_SH)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(s.layerDir(hex), ".done")); err != nil {
		_ = f.Close()
		return false, nil
	}
	s.pin(hex, f)
	return true, nil
}

// pin records f, a lock file held shared, as this Store's pin on a layer.
func (s *Store) pin(hex string, f *os.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pins[hex]; ok {
		_ = f.Close()
		return
	}
	s.pins[hex] = f
}
