package local

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/sys/unix"
)

var _ runtime.Copier = (*Engine)(nil)

// errNoPath marks a path the target's filesystem does not have (exit 66).
var errNoPath = runtime.NewKind(target.ErrNotFound, "no such file or directory")

// rootFS is a target's root directory held open. Every path is resolved
// from it with openat2's RESOLVE_IN_ROOT, so an absolute or relative
// symbolic link or ".." stays inside the target's filesystem, and with
// RESOLVE_NO_MAGICLINKS, so /proc/*/root and /proc/*/fd links are refused.
type rootFS struct {
	fd       int
	ref      target.Ref
	uid, gid []idRange
	proc     *openTarget // the running target's pidfd; nil for a stopped one
}

// openRoot resolves ref and opens its root directory, checking that the
// process it was resolved to still runs once the root is open.
func (e *Engine) openRoot(ctx context.Context, ref target.Ref) (*rootFS, error) {
	if err := e.checkCaller(ctx, ref); err != nil { // root, or the owner (rootless.go)
		return nil, err
	}
	proc, err := e.resolveAny(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref, err)
	}
	if proc.Stopped != nil {
		return e.openStoppedRoot(ctx, ref, proc) // read-only (stopped.go)
	}
	pidfd, err := unix.PidfdOpen(proc.PID, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %s has exited", target.ErrNotFound, proc.Description)
	}
	dir := "/proc/" + strconv.Itoa(proc.PID)
	fd, err := unix.Open(dir+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = unix.Close(pidfd)
		return nil, procError(proc.PID, "root", err)
	}
	r := &rootFS{fd: fd, ref: ref, proc: &openTarget{pidfd: pidfd}}
	r.uid, err = readIDMap(dir + "/uid_map")
	if err == nil {
		r.gid, err = readIDMap(dir + "/gid_map")
	}
	// The PID may have been reused between Resolve and Open: the pidfd
	// says whether the process it names still runs.
	if err != nil || !r.proc.alive() {
		r.close()
		return nil, fmt.Errorf("%w: %s exited while ephem opened it", target.ErrNotFound, proc.Description)
	}
	return r, nil
}

func (r *rootFS) close() {
	_ = unix.Close(r.fd)
	if r.proc != nil {
		_ = unix.Close(r.proc.pidfd)
	}
}

// gone returns an ErrTargetGone error (exit 75) once the target's process
// has exited: its files stay readable through the open descriptors, but a
// copy that outlives the target is not what the user asked for.
func (r *rootFS) gone() error {
	if r.proc == nil || r.proc.alive() {
		return nil
	}
	return fmt.Errorf("%w during the copy: %s", runtime.ErrTargetGone, r.ref)
}

// open resolves p inside the root; follow says whether a symbolic link as
// p's last component is followed (inside the root, as every other is).
func (r *rootFS) open(p string, flags int, follow bool) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	if !follow {
		how.Flags |= unix.O_NOFOLLOW
	}
	return openat2(r.fd, p, &how)
}

// openChild opens name, one component, in the directory dirfd without
// following any symbolic link. mode is the new file's when flags create.
func openChild(dirfd int, name string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Mode: uint64(mode),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	return openat2(dirfd, name, &how)
}

// openat2 retries what a concurrent rename (EAGAIN) or a signal interrupted.
func openat2(dirfd int, p string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, p, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 64 {
			continue
		}
		return fd, err
	}
}

// pathError says why path p of the target could not be used.
func (r *rootFS) pathError(op, p string, err error) error {
	where := r.ref.String() + ":" + p
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: %s", errNoPath, where)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%w: %s (a component is not a directory)", errNoPath, where)
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w: %s %s: too many symbolic links, or a link where none may be", runtime.ErrUsage, op, where)
	case errors.Is(err, unix.EEXIST), errors.Is(err, unix.EISDIR), errors.Is(err, unix.ENOTEMPTY):
		return fmt.Errorf("%w: %s %s: a directory and a file cannot replace each other", runtime.ErrUsage, op, where)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%w: %s %s: the path leaves the target's root", runtime.ErrPermission, op, where)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.EROFS):
		return fmt.Errorf("%w: %s %s: %w", runtime.ErrPermission, op, where, err)
	}
	return fmt.Errorf("%w: %s %s: %w", runtime.ErrOS, op, where, err)
}

// cleanTargetPath checks that p is an absolute path and cleans it.
func cleanTargetPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%w: %q: give an absolute path inside the target", runtime.ErrUsage, p)
	}
	return path.Clean(p), nil
}

// CopyFrom implements runtime.Copier: it writes p as a tar stream, reading
// only what is inside the target's root. Owners are the target's IDs.
func (e *Engine) CopyFrom(ctx context.Context, ref target.Ref, p string, o runtime.CopyOptions, w io.Writer) error {
	p, err := cleanTargetPath(p)
	if err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf("%w: copying the whole root: copy its directories one by one", runtime.ErrUsage)
	}
	r, err := e.openRoot(ctx, ref)
	if err != nil {
		return err
	}
	defer r.close()
	return r.copyFrom(ctx, p, o, w)
}

// copyFrom writes the clean path p as a tar stream.
func (r *rootFS) copyFrom(ctx context.Context, p string, o runtime.CopyOptions, w io.Writer) error {
	fd, err := r.open(p, unix.O_PATH, o.FollowLink)
	if err != nil {
		return r.pathError("opening", p, err)
	}
	defer func() { _ = unix.Close(fd) }()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return r.pathError("reading", p, err)
	}
	c := &tarOut{r: r, tw: tar.NewWriter(w), ctx: ctx}
	reopen := func(flags int) (int, error) {
		nfd, err := r.open(p, flags, o.FollowLink)
		if err == nil {
			var again unix.Stat_t
			if err = unix.Fstat(nfd, &again); err == nil && (again.Dev != st.Dev || again.Ino != st.Ino) {
				_ = unix.Close(nfd)
				err = unix.EAGAIN
			}
		}
		return nfd, err
	}
	if err := c.entry(p, path.Base(p), &st, reopen, func() (string, error) { return readlink(fd, "") }); err != nil {
		return err
	}
	if err := r.gone(); err != nil {
		return err
	}
	if err := c.tw.Close(); err != nil {
		return fmt.Errorf("writing the tar stream: %w", err)
	}
	return nil
}

// tarOut writes a target's files as a tar stream.
type tarOut struct {
	r   *rootFS
	tw  *tar.Writer
	ctx context.Context
	buf []byte // file contents pass through it, copyBufferSize bytes
}

// copyBufferSize is the buffer a file's content is copied through: 32 KiB
// (io.Copy's) halves the throughput of a large file through the pipe.
const copyBufferSize = 1 << 20

// entry writes one file, directory or link, named name in the stream and
// p in the target; open reopens it for reading, link reads a link.
func (c *tarOut) entry(p, name string, st *unix.Stat_t, open func(int) (int, error), link func() (string, error)) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if err := c.r.gone(); err != nil {
		return err
	}
	h := &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: toInside(c.r.uid, st.Uid), Gid: toInside(c.r.gid, st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
		return c.file(p, h, open)
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
		return c.dir(p, h, open)
	case unix.S_IFLNK:
		l, err := link()
		if err != nil {
			return c.r.pathError("reading the link", p, err)
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, l
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("%w: %s:%s is a device or socket: ephem cp copies files, directories and links", runtime.ErrUsage, c.r.ref, p)
	}
	return c.header(h)
}

func (c *tarOut) header(h *tar.Header) error {
	if err := c.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing the tar stream: %w", err)
	}
	return nil
}

// file writes a regular file's header and content.
func (c *tarOut) file(p string, h *tar.Header, open func(int) (int, error)) error {
	fd, err := open(unix.O_RDONLY | unix.O_NONBLOCK)
	if err != nil {
		return c.r.pathError("opening", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if err := c.header(h); err != nil {
		return err
	}
	if c.buf == nil {
		c.buf = make([]byte, copyBufferSize)
	}
	n, err := io.CopyBuffer(c.tw, &goneReader{r: c.r, rd: io.LimitReader(f, h.Size)}, c.buf)
	if errors.Is(err, runtime.ErrTargetGone) {
		return err
	}
	if err == nil && n < h.Size {
		err = fmt.Errorf("%w: %s:%s shrank while ephem copied it", runtime.ErrOS, c.r.ref, p)
	}
	if err != nil {
		return fmt.Errorf("copying %s:%s: %w", c.r.ref, p, err)
	}
	return nil
}

// goneCheckEvery is how many bytes of a file are read between two checks
// that the target still runs.
const goneCheckEvery = 8 << 20

// goneReader reads rd and fails once the target has exited, checking
// every goneCheckEvery bytes, so a large file's copy ends soon after.
type goneReader struct {
	r    *rootFS
	rd   io.Reader
	read int64
}

func (g *goneReader) Read(b []byte) (int, error) {
	if g.read >= goneCheckEvery {
		g.read = 0
		if err := g.r.gone(); err != nil {
			return 0, err
		}
	}
	n, err := g.rd.Read(b)
	g.read += int64(n)
	return n, err
}

// dir writes a directory and, recursively, what it holds, opening each
// entry by one component beneath the directory, never through a link.
func (c *tarOut) dir(p string, h *tar.Header, open func(int) (int, error)) error {
	fd, err := open(unix.O_RDONLY | unix.O_DIRECTORY)
	if err != nil {
		return c.r.pathError("opening", p, err)
	}
	d := os.NewFile(uintptr(fd), p)
	defer d.Close()
	if err := c.header(h); err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return c.r.pathError("listing", p, err)
	}
	slices.Sort(names)
	dfd := int(d.Fd())
	for _, n := range names {
		cp := path.Join(p, n)
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return c.r.pathError("reading", cp, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			continue // nothing to copy
		}
		reopen := func(flags int) (int, error) {
			nfd, err := openChild(dfd, n, flags, 0)
			if err == nil {
				var again unix.Stat_t
				if err = unix.Fstat(nfd, &again); err == nil && (again.Dev != st.Dev || again.Ino != st.Ino) {
					_ = unix.Close(nfd)
					err = unix.EAGAIN
				}
			}
			return nfd, err
		}
		if err := c.entry(cp, h.Name+n, &st, reopen, func() (string, error) { return readlink(dfd, n) }); err != nil {
			return err
		}
	}
	return nil
}

// readlink reads the link name in dirfd ("" for dirfd itself, an O_PATH
// descriptor of the link).
func readlink(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// idRange is one line of an ID map: count IDs from inside map to outside.
type idRange struct{ inside, outside, count uint32 }

func readIDMap(file string) ([]idRange, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m []idRange
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		var v [3]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("parsing %s: %w", file, err)
			}
		}
		m = append(m, idRange{uint32(v[0]), uint32(v[1]), uint32(v[2])})
	}
	return m, nil
}

// overflowID is what an ID the map lacks shows as (the kernel's default).
const overflowID = 65534

// toInside maps a host ID into the target's user namespace.
func toInside(m []idRange, id uint32) int {
	for _, r := range m {
		if id >= r.outside && id-r.outside < r.count {
			return int(r.inside + (id - r.outside))
		}
	}
	return overflowID
}

// toHost maps an ID of the target's user namespace to the host's.
func toHost(m []idRange, id int) (int, bool) {
	for _, r := range m {
		if id >= 0 && uint32(id) >= r.inside && uint32(id)-r.inside < r.count {
			return int(r.outside + (uint32(id) - r.inside)), true
		}
	}
	return 0, false
}
