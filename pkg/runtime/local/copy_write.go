package local

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/sys/unix"
)

// CopyTo implements runtime.Copier: it unpacks r at p inside the target's
// root. Each entry's parent directory is resolved inside the root; a file
// or link is created under a temporary name with O_CREAT|O_EXCL in that
// directory and renamed over its name, so no link is ever written through
// and no half-written file is left under the final name.
func (e *Engine) CopyTo(ctx context.Context, ref target.Ref, p string, o runtime.CopyOptions, rd io.Reader) error {
	dirOnly := strings.HasSuffix(p, "/")
	p, err := cleanTargetPath(p)
	if err != nil {
		return err
	}
	r, err := e.openRoot(ctx, ref)
	if err != nil {
		return err
	}
	defer r.close()
	if dirOnly {
		// "PATH/" names a directory that must exist, as for docker cp.
		fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY, true)
		if err != nil {
			return r.pathError("opening the directory", p+"/", err)
		}
		_ = unix.Close(fd)
	}
	return r.copyTo(ctx, p, o, rd)
}

// copyTo unpacks rd at the clean path p.
func (r *rootFS) copyTo(ctx context.Context, p string, o runtime.CopyOptions, rd io.Reader) error {
	u := &untar{r: r, o: o, ctx: ctx, base: p}
	if fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY, true); err == nil {
		_ = unix.Close(fd) // a directory: unpack into it
	} else if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		// p is the name of what the stream holds, in its parent.
		if p == "/" {
			return r.pathError("opening", p, err)
		}
		u.base, u.rename = path.Dir(p), path.Base(p)
		fd, err := r.open(u.base, unix.O_PATH|unix.O_DIRECTORY, true)
		if err != nil {
			return r.pathError("opening", p, err)
		}
		_ = unix.Close(fd)
	} else {
		return r.pathError("opening", p, err)
	}
	if err := u.all(tar.NewReader(rd)); err != nil {
		return err
	}
	return u.finish()
}

// untar unpacks a tar stream into a target's root.
type untar struct {
	r      *rootFS
	o      runtime.CopyOptions
	ctx    context.Context
	base   string // the directory entries are unpacked into
	rename string // the name the stream's top entry gets, if any
	top    string // the stream's top entry
	dirs   []pendingDir
}

// pendingDir is a directory whose mode and times are set at the end, once
// nothing more is written into it.
type pendingDir struct {
	path string
	h    *tar.Header
}

func (u *untar) all(tr *tar.Reader) error {
	for {
		if err := u.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: reading the tar stream: %w", runtime.ErrUsage, err)
		}
		if err := u.entry(h, tr); err != nil {
			return err
		}
	}
}

// name returns where entry h goes inside the root.
func (u *untar) name(h *tar.Header) (string, error) {
	c := path.Clean(h.Name)
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: tar entry %q leaves the destination", runtime.ErrUsage, h.Name)
	}
	if c == "." {
		return u.base, nil
	}
	first, rest, _ := strings.Cut(c, "/")
	if u.top == "" {
		u.top = first
	}
	if u.rename != "" {
		if first != u.top {
			return "", fmt.Errorf("%w: the stream holds %s and %s, but %s:%s is not a directory: copy into a directory",
				runtime.ErrUsage, u.top, first, u.r.ref, path.Join(u.base, u.rename))
		}
		first = u.rename
	}
	return path.Join(u.base, first, rest), nil
}

// entry unpacks one entry.
func (u *untar) entry(h *tar.Header, content io.Reader) error {
	switch h.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader:
		return nil
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink:
	default:
		return fmt.Errorf("%w: tar entry %q: only files, directories and symbolic links are copied into a target", runtime.ErrUsage, h.Name)
	}
	p, err := u.name(h)
	if err != nil {
		return err
	}
	if p == "/" || p == u.base && h.Typeflag == tar.TypeDir {
		return nil // the destination itself
	}
	dir, leaf := path.Dir(p), path.Base(p)
	pfd, err := u.r.open(dir, unix.O_PATH|unix.O_DIRECTORY, true)
	if err != nil {
		return u.r.pathError("opening", dir, err)
	}
	defer func() { _ = unix.Close(pfd) }()
	uid, gid := u.owner(h)
	if err := u.r.canOwn(p, h, uid, gid); err != nil { // without root (rootless_copy.go)
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		err = unix.Mkdirat(pfd, leaf, 0o700)
		if errors.Is(err, unix.EEXIST) {
			var st unix.Stat_t
			if err = unix.Fstatat(pfd, leaf, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				err = unix.EEXIST
			}
		}
		if err != nil {
			return u.r.pathError("creating the directory", p, err)
		}
		u.dirs = append(u.dirs, pendingDir{path: p, h: h})
		return nil
	case tar.TypeSymlink:
		return u.replace(pfd, p, func(tmp string) error {
			if err := unix.Symlinkat(h.Linkname, pfd, tmp); err != nil {
				return err
			}
			return unix.Fchownat(pfd, tmp, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
		}, h)
	}
	return u.replace(pfd, p, func(tmp string) error {
		fd, err := openChild(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), tmp)
		defer f.Close()
		if _, err := io.Copy(f, content); err != nil {
			return err
		}
		// chown before chmod: chown clears the set-ID bits.
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
		if err := f.Chmod(fileMode(h.Mode)); err != nil {
			return err
		}
		return f.Close()
	}, h)
}

// replace creates an entry under a temporary name in the directory pfd
// with create, sets its times and renames it over p's last component
// (which may be a link: the link is replaced, never followed).
func (u *untar) replace(pfd int, p string, create func(tmp string) error, h *tar.Header) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	tmp := ".ephem-cp-" + hex.EncodeToString(b[:])
	err := create(tmp)
	if err == nil {
		err = unix.UtimesNanoAt(pfd, tmp, times(h), unix.AT_SYMLINK_NOFOLLOW)
	}
	if err == nil {
		err = unix.Renameat(pfd, tmp, pfd, path.Base(p))
	}
	if err != nil {
		_ = unix.Unlinkat(pfd, tmp, 0)
		return u.r.pathError("writing", p, err)
	}
	return nil
}

// finish sets the directories' owners, modes and times, deepest first,
// through descriptors opened without following links.
func (u *untar) finish() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		pfd, err := u.r.open(path.Dir(d.path), unix.O_PATH|unix.O_DIRECTORY, true)
		if err != nil {
			return u.r.pathError("opening", path.Dir(d.path), err)
		}
		err = u.fixDir(pfd, path.Base(d.path), d.h)
		_ = unix.Close(pfd)
		if err != nil {
			return u.r.pathError("setting the mode of", d.path, err)
		}
	}
	return nil
}

func (u *untar) fixDir(pfd int, leaf string, h *tar.Header) error {
	fd, err := openChild(pfd, leaf, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), leaf)
	defer f.Close()
	uid, gid := u.owner(h)
	if err := f.Chown(uid, gid); err != nil {
		return err
	}
	if err := f.Chmod(fileMode(h.Mode)); err != nil {
		return err
	}
	return unix.UtimesNanoAt(pfd, leaf, times(h), unix.AT_SYMLINK_NOFOLLOW)
}

// owner returns the host IDs an entry gets: the target's root, or with
// -a the stream's IDs as the target's user namespace maps them.
func (u *untar) owner(h *tar.Header) (int, int) {
	if rootless() && !u.o.Archive {
		return os.Geteuid(), os.Getegid() // the caller's own (rootless_copy.go)
	}
	uid, gid := 0, 0
	if u.o.Archive {
		uid, gid = h.Uid, h.Gid
	}
	hu, ok1 := toHost(u.r.uid, uid)
	hg, ok2 := toHost(u.r.gid, gid)
	if !ok1 || !ok2 {
		// Not mapped in the target: its root's.
		hu, _ = toHost(u.r.uid, 0)
		hg, _ = toHost(u.r.gid, 0)
	}
	return hu, hg
}

// fileMode converts a tar mode (permissions, set-ID and sticky bits).
func fileMode(m int64) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// times returns an entry's access and modification times for utimensat.
func times(h *tar.Header) []unix.Timespec {
	at := h.AccessTime
	if at.IsZero() {
		at = h.ModTime
	}
	return []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
}
