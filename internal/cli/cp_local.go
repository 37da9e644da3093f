package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"golang.org/x/sys/unix"
)

// The local side of ephem cp: a tar stream of a local path, and the
// unpacking of one into a temporary directory beside the destination,
// renamed into place once complete.

// localError says why the local path p could not be used.
func localError(op, p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageError("%s %s: no such file or directory", op, p)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %s %s: %w", runtime.ErrPermission, op, p, err)
	}
	return fmt.Errorf("%w: %s %s: %w", runtime.ErrOS, op, p, err)
}

// writeTar writes the local path src to w as a tar stream whose top entry
// is src's base name. follow copies what a link as src names.
func writeTar(ctx context.Context, src string, follow bool, w io.Writer) error {
	p, err := filepath.Abs(src)
	if err != nil {
		return localError("reading", src, err)
	}
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	fi, err := stat(p)
	if err != nil {
		return localError("reading", src, err)
	}
	if p == "/" {
		return usageError("copying the whole root: copy its directories one by one")
	}
	tw := tar.NewWriter(w)
	if err := addTar(ctx, tw, p, filepath.Base(p), fi); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the tar stream: %w", err)
	}
	return nil
}

// addTar writes p, named name in the stream, and what it holds.
func addTar(ctx context.Context, tw *tar.Writer, p, name string, fi fs.FileInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var link string
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(p); err != nil {
			return localError("reading", p, err)
		}
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return usageError("%s: %v", p, err)
	}
	h.Name, h.Uname, h.Gname, h.ChangeTime, h.Format = name, "", "", time.Time{}, tar.FormatPAX
	switch {
	case fi.IsDir():
		h.Name += "/"
	case fi.Mode().IsRegular(), fi.Mode()&fs.ModeSymlink != 0:
	default:
		return usageError("%s is a device, pipe or socket: ephem cp copies files, directories and links", p)
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing the tar stream: %w", err)
	}
	switch {
	case fi.IsDir():
		ents, err := os.ReadDir(p)
		if err != nil {
			return localError("listing", p, err)
		}
		for _, e := range ents {
			cfi, err := e.Info()
			if err != nil {
				return localError("reading", filepath.Join(p, e.Name()), err)
			}
			if err := addTar(ctx, tw, filepath.Join(p, e.Name()), h.Name+e.Name(), cfi); err != nil {
				return err
			}
		}
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return localError("opening", p, err)
		}
		defer f.Close()
		n, err := io.Copy(tw, io.LimitReader(f, h.Size))
		if err == nil && n < h.Size {
			err = fmt.Errorf("%w: %s shrank while ephem copied it", runtime.ErrOS, p)
		}
		if err != nil {
			return fmt.Errorf("copying %s: %w", p, err)
		}
	}
	return nil
}

// extractTar unpacks the tar stream r, whose top entry is named top, at
// the local path dst: into dst when it is a directory, else as dst. It
// unpacks into a temporary directory beside the destination and renames
// what it holds into place, so a failed copy leaves no partial file.
func extractTar(ctx context.Context, r io.Reader, dst, top string, archive bool) error {
	dir, name := dst, top
	if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
		dir, name = filepath.Dir(dst), filepath.Base(dst)
		if fi, err := os.Stat(dir); err != nil {
			return localError("writing into", dir, err)
		} else if !fi.IsDir() {
			return usageError("%s is not a directory", dir)
		}
	}
	tmp, err := os.MkdirTemp(dir, ".ephem-cp-")
	if err != nil {
		return localError("writing into", dir, err)
	}
	defer os.RemoveAll(tmp)
	x := &extraction{root: tmp, dest: filepath.Join(dir, name), archive: archive, dirs: map[string]*tar.Header{}}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the tar stream: %w", err)
		}
		if err := x.entry(h, tr); err != nil {
			return err
		}
	}
	if x.top == "" {
		return usageError("the tar stream is empty")
	}
	if err := x.finish(); err != nil {
		return err
	}
	return move(filepath.Join(tmp, x.top), filepath.Join(dir, name))
}

// extraction is one tar stream being unpacked into root.
type extraction struct {
	root    string
	dest    string // where the top entry goes, for messages
	archive bool
	top     string
	dirs    map[string]*tar.Header // directories it made, by name
	order   []string
	buf     []byte // file contents pass through it
}

// entry unpacks one entry. Its parent must be a directory this extraction
// made: an entry never lands beneath a link.
func (x *extraction) entry(h *tar.Header, content io.Reader) error {
	name := path.Clean(h.Name)
	if name == "." {
		return nil
	}
	if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return usageError("tar entry %q leaves the destination", h.Name)
	}
	first, _, _ := strings.Cut(name, "/")
	if x.top == "" {
		x.top = first
	}
	if first != x.top {
		return usageError("the tar stream holds both %s and %s", x.top, first)
	}
	if parent := path.Dir(name); parent != "." && x.dirs[parent] == nil {
		return usageError("tar entry %q comes before its directory", h.Name)
	}
	p := filepath.Join(x.root, filepath.FromSlash(name))
	var err error
	switch h.Typeflag {
	case tar.TypeDir:
		if x.dirs[name] == nil {
			if err = os.Mkdir(p, 0o700); err == nil {
				x.order = append(x.order, name)
			}
		}
		x.dirs[name] = h
	case tar.TypeReg:
		err = x.file(p, h, content)
	case tar.TypeSymlink:
		if err = os.Symlink(h.Linkname, p); err == nil {
			err = x.own(p, h)
		}
	default:
		return usageError("tar entry %q: only files, directories and symbolic links are copied", h.Name)
	}
	if err == nil && h.Typeflag != tar.TypeDir {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, p, times(h), unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return localError("writing", x.final(p), err)
	}
	return nil
}

// final returns the path p, under the temporary directory, will have once
// renamed into place: what a message names.
func (x *extraction) final(p string) string {
	rel, err := filepath.Rel(filepath.Join(x.root, x.top), p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return filepath.Join(x.dest, rel)
}

func (x *extraction) file(p string, h *tar.Header, content io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if x.buf == nil {
		x.buf = make([]byte, 1<<20) // 32 KiB (io.Copy's) halves a large file's throughput
	}
	// Without ReadFrom, which would copy through 32 KiB.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, content, x.buf); err != nil {
		return err
	}
	if err := x.own(p, h); err != nil {
		return err
	}
	if err := f.Chmod(h.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil {
		return err
	}
	return f.Close()
}

// own gives p the entry's owners with -a.
func (x *extraction) own(p string, h *tar.Header) error {
	if !x.archive {
		return nil
	}
	return os.Lchown(p, h.Uid, h.Gid)
}

// finish sets the directories' owners, modes and times, deepest first.
func (x *extraction) finish() error {
	for _, name := range slices.Backward(x.order) {
		h, p := x.dirs[name], filepath.Join(x.root, filepath.FromSlash(name))
		err := x.own(p, h)
		if err == nil {
			err = os.Chmod(p, h.FileInfo().Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		if err == nil {
			err = unix.UtimesNanoAt(unix.AT_FDCWD, p, times(h), unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return localError("writing", x.final(p), err)
		}
	}
	return nil
}

// move renames src to dst; a directory onto a directory merges into it.
func move(src, dst string) error {
	sfi, err := os.Lstat(src)
	if err != nil {
		return localError("moving", src, err)
	}
	if dfi, err := os.Lstat(dst); err == nil && dfi.IsDir() && sfi.IsDir() {
		ents, err := os.ReadDir(src)
		if err != nil {
			return localError("moving", src, err)
		}
		for _, e := range ents {
			if err := move(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		if err := os.Chmod(dst, sfi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return localError("writing", dst, err)
		}
		return os.Chtimes(dst, sfi.ModTime(), sfi.ModTime())
	}
	if err := os.Rename(src, dst); err != nil {
		return localError("writing", dst, err)
	}
	return nil
}

// times returns an entry's access and modification times for utimensat.
func times(h *tar.Header) []unix.Timespec {
	at := h.AccessTime
	if at.IsZero() {
		at = h.ModTime
	}
	return []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
}
