package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/moby/go-archive"
)

// layerStats describes an unpacked layer.
type layerStats struct {
	Unpacked int64 // sum of regular file sizes
	Entries  int   // tar entries
	// opaque lists the directories an unprivileged unpack marks opaque
	// itself (see rootlessEntry).
	opaque []string
}

// unpackSpec says what to unpack and how to verify it.
type unpackSpec struct {
	// r yields the layer blob, compressed (gzip, zstd) or not.
	r io.Reader
	// digest, if non-zero, is the blob's expected sha256 digest.
	digest v1.Hash
	// diffID is the expected sha256 digest of the uncompressed tar.
	diffID v1.Hash
	// limit bounds what may be unpacked (nil: no bound).
	limit *unpackLimit
}

// sourceError marks an error from reading the blob itself, as opposed to
// decoding it.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// sourceReader tags read errors as sourceErrors and stops on cancellation.
type sourceReader struct {
	ctx context.Context
	r   io.Reader
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// unpackLayer unpacks the layer blob described by sp into dst, an existing
// empty directory, with overlayfs whiteouts. It verifies the blob digest
// and the diffID; any failure of the data itself wraps ErrCorrupt, and the
// caller must then discard dst.
//
// The blob is read, and its digest computed, a few chunks ahead in a
// goroutine of its own (readAhead), so that receiving it overlaps
// decompressing and unpacking it; nothing is staged on disk.
func unpackLayer(ctx context.Context, dst string, sp unpackSpec) (layerStats, error) {
	var blobHash hash.Hash
	if sp.digest != (v1.Hash{}) {
		blobHash = sha256.New()
	}
	ra := newReadAhead(sp.r, blobHash)
	defer func() { _ = ra.Close() }()
	var src io.Reader = &sourceReader{ctx: ctx, r: ra}
	dec, err := decompress(src)
	if err != nil {
		return layerStats{}, blobErr(ctx, "decompressing layer", err)
	}
	defer func() { _ = dec.Close() }()
	tarHash := sha256.New()
	tee := io.TeeReader(dec, tarHash)
	stats, err := extract(tee, dst, sp.limit)
	if err != nil {
		return stats, blobErr(ctx, "unpacking layer", err)
	}
	// Hash what follows the end-of-archive marker too, and read the blob to
	// its end so that truncation and trailing garbage are noticed.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return stats, blobErr(ctx, "reading layer", err)
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return stats, blobErr(ctx, "reading layer", err)
	}
	if blobHash != nil {
		if got := fmt.Sprintf("sha256:%x", blobHash.Sum(nil)); got != sp.digest.String() {
			return stats, corruptf("layer blob digest is %s, want %s", got, sp.digest)
		}
	}
	if got := fmt.Sprintf("sha256:%x", tarHash.Sum(nil)); got != sp.diffID.String() {
		return stats, corruptf("layer diffID is %s, want %s (the config's rootfs.diff_ids)", got, sp.diffID)
	}
	return stats, nil
}

// blobErr classifies an error met while reading and unpacking a blob:
// network failures are ErrUnreachable, cancellation stays as it is, and
// anything else about the data is ErrCorrupt.
func blobErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var se *sourceError
	if errors.As(err, &se) && isNetError(se.err) {
		return fmt.Errorf("%s: %w", what, classify(se.err))
	}
	if errors.Is(err, ErrCorrupt) || !isDataError(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrCorrupt, err)
}

// isDataError reports whether err is about the layer's bytes rather than
// the local file system.
func isDataError(err error) bool {
	var fe *filterError
	var se *sourceError
	return errors.As(err, &fe) || errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, tar.ErrHeader) ||
		strings.Contains(err.Error(), "zstd") || strings.Contains(err.Error(), "flate")
}

// decompress returns the uncompressed stream of a gzip, zstd or plain tar blob.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// errUnpackStopped tells the filter that archive.Unpack has returned.
var errUnpackStopped = errors.New("unpacker stopped reading")

// extract validates the tar stream r entry by entry and unpacks it into dst
// with github.com/moby/go-archive, converting whiteouts to overlayfs form.
// Validation happens before an entry reaches the unpacker, which itself
// confines every write to dst (os.Root).
func extract(r io.Reader, dst string, limit *unpackLimit) (layerStats, error) {
	pr, pw := io.Pipe()
	var (
		stats     layerStats
		filterErr error
		done      = make(chan struct{})
	)
	go func() {
		defer close(done)
		filterErr = filterTar(r, pw, &stats, func(size int64) error { return limit.room(dst, size) })
		_ = pw.CloseWithError(filterErr) // nil closes normally
	}()
	unpackErr := archive.Unpack(pr, dst, &archive.TarOptions{WhiteoutFormat: archive.OverlayWhiteoutFormat,
		NoLchown: unprivileged, InUserNS: unprivileged})
	_ = pr.CloseWithError(errUnpackStopped)
	<-done
	if unpackErr == nil {
		unpackErr = markOpaque(dst, stats.opaque)
	}
	// The unpacker stops reading at the end-of-archive marker, which may
	// leave the filter blocked writing the final padding: that is success.
	finished := unpackErr == nil && errors.Is(filterErr, errUnpackStopped)
	switch {
	case unpackErr != nil && errors.Is(unpackErr, syscall.ENOSPC):
		return stats, fmt.Errorf("%w: writing layer contents: %w: free some space (ephem images prune) or move --cache-dir", ErrNoSpace, unpackErr)
	// When the unpacker quit first, the filter's error only says so: the
	// unpacker's is the cause.
	case filterErr != nil && !finished && !errors.Is(filterErr, errUnpackStopped):
		return stats, filterErr
	case unpackErr != nil:
		return stats, fmt.Errorf("writing layer contents: %w", unpackErr)
	case filterErr != nil && !finished:
		return stats, filterErr
	}
	return stats, nil
}

// filterError reports a tar stream that is unreadable or holds an entry
// that is not allowed in a layer.
type filterError struct{ err error }

func (e *filterError) Error() string { return e.err.Error() }
func (e *filterError) Unwrap() error { return e.err }

// filterTar copies the tar stream r to w, rejecting it at the first entry
// that could write outside the layer or makes no sense in a layer, and
// normalizing entry names.
func filterTar(r io.Reader, w io.Writer, stats *layerStats, room func(size int64) error) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	seen := map[string]byte{}   // cleaned entry name → type in this layer
	buf := make([]byte, 32<<10) // one copy buffer for all entries, not one each
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return &filterError{fmt.Errorf("%w: reading tar header: %w", ErrCorrupt, err)}
		}
		if err := checkEntry(hdr, seen); err != nil {
			return &filterError{fmt.Errorf("%w: layer entry %q: %w", ErrCorrupt, hdr.Name, err)}
		}
		stats.Entries++
		if hdr.Typeflag == tar.TypeReg {
			stats.Unpacked += hdr.Size
			if err := room(hdr.Size); err != nil {
				return err
			}
		}
		if unprivileged {
			if dir, ok := rootlessEntry(hdr); ok {
				stats.opaque = append(stats.opaque, dir)
				continue // marked once the layer is unpacked
			}
		}
		if err := writeHeader(tw, hdr); err != nil {
			return err
		}
		if _, err := io.CopyBuffer(tw, tr, buf); err != nil { //nolint:gosec // bounded by the entry's size; the layer was asked for
			return copyErr(hdr, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finishing tar stream: %w", err)
	}
	return nil
}

// writeHeader writes hdr, falling back to PAX if its original format
// cannot express the normalized header.
func writeHeader(tw *tar.Writer, hdr *tar.Header) error {
	err := tw.WriteHeader(hdr)
	if err != nil && hdr.Format != tar.FormatPAX && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, errUnpackStopped) {
		hdr.Format = tar.FormatPAX
		err = tw.WriteHeader(hdr)
	}
	if err != nil {
		return fmt.Errorf("passing on layer entry %q: %w", hdr.Name, err)
	}
	return nil
}

// copyErr classifies an error from copying an entry's data: read errors are
// data errors, write errors mean the unpacker stopped.
func copyErr(hdr *tar.Header, err error) error {
	if errors.Is(err, errUnpackStopped) || errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("passing on layer entry %q: %w", hdr.Name, err)
	}
	return &filterError{fmt.Errorf("%w: reading layer entry %q: %w", ErrCorrupt, hdr.Name, err)}
}

// overlayXattrPrefixes are xattrs that steer overlayfs lookups (redirect,
// metacopy, origin); a layer must not bring its own.
var overlayXattrPrefixes = []string{"SCHILY.xattr.trusted.overlay.", "SCHILY.xattr.user.overlay."}

// checkEntry validates and normalizes hdr in place: names are made relative
// and clean, and the entry must stay inside the layer. seen records the
// types of the entries before it in the same layer.
func checkEntry(hdr *tar.Header, seen map[string]byte) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil // carries no file; the unpacker ignores it
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeGNUSparse:
		hdr.Typeflag = tar.TypeReg // the reader has expanded the holes
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	name, err := localName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		hdr.Name = "./"
		return nil
	}
	if err := checkParents(name, seen); err != nil {
		return err
	}
	hdr.Name = name
	if hdr.Typeflag == tar.TypeLink {
		target, err := localName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink target: %w", err)
		}
		if err := checkParents(target, seen); err != nil {
			return fmt.Errorf("hardlink target: %w", err)
		}
		switch t, ok := seen[target]; {
		case !ok:
			return fmt.Errorf("hardlink to %q, which is not an earlier entry of this layer", hdr.Linkname)
		case t == tar.TypeDir:
			return fmt.Errorf("hardlink to directory %q", hdr.Linkname)
		}
		hdr.Linkname = target
	}
	hdr.Xattrs = nil //nolint:staticcheck // PAXRecords carries the same xattrs
	for k := range hdr.PAXRecords {
		for _, p := range overlayXattrPrefixes {
			if strings.HasPrefix(k, p) {
				delete(hdr.PAXRecords, k)
			}
		}
	}
	typ := hdr.Typeflag
	if base := path.Base(name); strings.HasPrefix(base, archive.WhiteoutPrefix) && base != archive.WhiteoutOpaqueDir {
		// A whiteout becomes a character device named after what it hides,
		// which must be a file name: not empty, "." or "..".
		hidden := strings.TrimPrefix(base, archive.WhiteoutPrefix)
		if hidden == "" || hidden == "." || hidden == ".." {
			return fmt.Errorf("whiteout %q names no file", hdr.Name)
		}
		name, typ = path.Join(path.Dir(name), hidden), tar.TypeChar
	}
	seen[name] = typ
	return nil
}

// localName cleans a tar entry name and checks that it stays inside the
// layer. Leading slashes are dropped (the name is relative to the layer
// root, as Docker and containerd treat it); ".." that climbs out is refused.
func localName(n string) (string, error) {
	c := path.Clean(strings.TrimLeft(n, "/"))
	if c == "." {
		return c, nil
	}
	if !filepath.IsLocal(c) {
		return "", fmt.Errorf("path %q escapes the layer directory", n)
	}
	return c, nil
}

// checkParents refuses a name whose parent directories, as far as this
// layer defines them, are symlinks or non-directories: following them would
// write through a link (possibly out of the layer) or fail.
func checkParents(name string, seen map[string]byte) error {
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		t, ok := seen[dir]
		if !ok {
			continue
		}
		switch t {
		case tar.TypeDir:
		case tar.TypeSymlink:
			return fmt.Errorf("parent %q is a symlink in this layer; refusing to write through it", dir)
		default:
			return fmt.Errorf("parent %q is not a directory in this layer", dir)
		}
	}
	return nil
}
