package image

import (
	"archive/tar"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/go-archive"
	"golang.org/x/sys/unix"
)

// unprivileged says whether layers are unpacked without root, as a user
// running rootless ephem does. Such an unpack differs from root's in these
// ways only (docs/security.md, "Rootless"):
//   - ownership is not applied: every file belongs to the user on disk, so
//     in a target's user namespace that maps its root to the user, all the
//     image's files read as root:root (files the image gives to other
//     owners too); modes, setuid/setgid bits, times and links are kept,
//     except that directories gain u+rwx (0555 becomes 0755) so that the
//     user can unpack into them and prune can remove them;
//   - device nodes (block and character) are left out, as the kernel
//     forbids making them; whiteouts (character 0/0) are made all the same
//     (Linux 5.8+ allows them unprivileged), and so are FIFOs where
//     permitted;
//   - extended attributes outside user.* (security.capability file
//     capabilities, trusted.*, security.selinux) are dropped, as only root
//     may set them;
//   - an opaque directory is marked with user.overlay.opaque instead of
//     trusted.overlay.opaque, which the local engine reads by mounting the
//     overlay with "userxattr".
var unprivileged = os.Geteuid() != 0

// Unprivileged reports whether this process unpacks layers as a user other
// than root (see the list above), so the local engine knows to mount them
// with the userxattr overlay option.
func Unprivileged() bool { return unprivileged }

// userCacheDir returns the per-user cache directory for a user other than
// root: $XDG_CACHE_HOME/ephem, default ~/.cache/ephem.
func userCacheDir() (string, bool) {
	if os.Geteuid() == 0 {
		return "", false
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", false
	}
	return filepath.Join(d, "ephem"), true
}

// rootlessEntry adapts hdr, in an unprivileged unpack, to what a user may
// create: it drops ownership and the xattrs only root may set. It returns
// the directory an opaque marker stands for, and true, when the entry is
// one: the caller marks that directory itself once the layer is unpacked.
func rootlessEntry(hdr *tar.Header) (string, bool) {
	if path.Base(hdr.Name) == archive.WhiteoutOpaqueDir {
		return path.Dir(hdr.Name), true
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	if hdr.Typeflag == tar.TypeDir {
		hdr.Mode |= 0o700 // the user must write into it, and prune remove it
	}
	for k := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && !strings.HasPrefix(x, "user.") {
			delete(hdr.PAXRecords, k)
		}
	}
	return "", false
}

// markOpaque sets user.overlay.opaque on each of dirs, inside the layer
// directory dst. os.Root keeps the lookups inside dst.
func markOpaque(dst string, dirs []string) error {
	if len(dirs) == 0 {
		return nil
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("opening layer directory: %w", err)
	}
	defer func() { _ = root.Close() }()
	for _, d := range dirs {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating opaque directory %q: %w", d, err)
		}
		f, err := root.Open(d)
		if err != nil {
			return fmt.Errorf("opening opaque directory %q: %w", d, err)
		}
		err = unix.Fsetxattr(int(f.Fd()), "user.overlay.opaque", []byte{'y'}, 0)
		f.Close()
		if err != nil {
			return fmt.Errorf("marking %q opaque (user.overlay.opaque): %w", d, err)
		}
	}
	return nil
}
