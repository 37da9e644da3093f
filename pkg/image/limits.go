package image

import (
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// DefaultMinFree is the free space an unpack leaves on the cache's file
// system at the least, unless PullOptions.MinFree says otherwise.
const DefaultMinFree = 256 << 20

// unpackLimit bounds what one pull may unpack: a layer of a few MB can
// unpack to gigabytes.
type unpackLimit struct {
	// left is what the image may still unpack, in bytes; nil: no cap.
	left *atomic.Int64
	cap  int64
	// minFree is the free space (bytes) the cache's file system keeps.
	minFree int64
}

// newUnpackLimit returns the limit of o's pull.
func newUnpackLimit(o PullOptions) *unpackLimit {
	l := &unpackLimit{minFree: o.MinFree, cap: o.MaxImageSize}
	if l.minFree == 0 {
		l.minFree = DefaultMinFree
	}
	if o.MaxImageSize > 0 {
		l.left = new(atomic.Int64)
		l.left.Store(o.MaxImageSize)
	}
	return l
}

// room says whether size more bytes may be written under dir.
func (l *unpackLimit) room(dir string, size int64) error {
	if l == nil {
		return nil
	}
	if l.left != nil && l.left.Add(-size) < 0 {
		return fmt.Errorf("%w: the image unpacks to more than --max-image-size %s: raise it if the image is meant to be that large", ErrTooLarge, humanSize(l.cap))
	}
	if l.minFree < 0 {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("checking free space under %s: %w", dir, err)
	}
	free := int64(st.Bavail) * st.Bsize //nolint:gosec // block counts fit an int64
	if free-size < l.minFree {
		return fmt.Errorf("%w: unpacking %s more would leave %s free on the cache's file system, below --cache-min-free %s: free some space (ephem images prune) or lower the floor",
			ErrNoSpace, humanSize(size), humanSize(max(free-size, 0)), humanSize(l.minFree))
	}
	return nil
}

// ParseSize reads a byte count such as 512M, 2G or 1048576 (binary units:
// K, M, G, T; an optional trailing B or iB).
func ParseSize(s string) (int64, error) {
	var n float64
	var unit string
	if _, err := fmt.Sscanf(s, "%g%s", &n, &unit); err != nil {
		if _, err := fmt.Sscanf(s, "%g", &n); err != nil {
			return 0, fmt.Errorf("size %q: write a number with K, M, G or T, such as 512M", s)
		}
	}
	mult := map[string]float64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}
	m, ok := mult[strings.ToUpper(unit)]
	if !ok || n < 0 || n*m > 1<<62 {
		return 0, fmt.Errorf("size %q: write a number with K, M, G or T, such as 512M", s)
	}
	return int64(n * m), nil
}
