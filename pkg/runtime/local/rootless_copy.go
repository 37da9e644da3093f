package local

import (
	"archive/tar"
	"fmt"
	"os"
	"slices"

	"github.com/ephem-dev/ephem/pkg/runtime"
)

// Without root, ephem cp reads and writes the target's files through
// /proc/PID/root with the caller's own rights, which as the owner of the
// target's user namespace are those of the IDs it maps to the caller (its
// root, for unshare --user --map-root-user and rootless podman). Files
// copied in belong to the caller; with -a, an entry may keep its owner
// only when that owner is the caller (and a group the caller has).

// canOwn fails with ErrPermission when ephem, without root, cannot give
// the entry h at p the host owner uid:gid.
func (r *rootFS) canOwn(p string, h *tar.Header, uid, gid int) error {
	if !rootless() {
		return nil
	}
	groups, _ := os.Getgroups()
	if uid == os.Geteuid() && (gid == os.Getegid() || slices.Contains(groups, gid)) {
		return nil
	}
	return fmt.Errorf("%w: needs root: -a keeps the owner %d:%d of %s (host IDs %d:%d), but without root copied files can only be yours (%d:%d in %s): copy without -a, or run ephem as root",
		runtime.ErrPermission, h.Uid, h.Gid, p, uid, gid, toInside(r.uid, uint32(os.Geteuid())), toInside(r.gid, uint32(os.Getegid())), r.ref) //nolint:gosec // IDs
}
