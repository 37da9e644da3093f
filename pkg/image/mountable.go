package image

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// maxOverlayLayers is the most lower layers one overlayfs mount takes
// (OVL_MAX_STACK in the kernel), however they are passed.
const maxOverlayLayers = 500

// lowerdirPlus reports whether this kernel's overlayfs takes lower layers one
// at a time with fsconfig's "lowerdir+" (Linux 6.8 and later), which the
// local engine tries first: then the layers' paths need not fit in one page
// of mount options. A variable so that tests can choose.
var lowerdirPlus = sync.OnceValue(probeLowerdirPlus)

// probeLowerdirPlus asks the kernel, without mounting anything, whether an
// overlay takes "lowerdir+". Without the new mount API, overlayfs or the
// privilege to use them, the answer is no: the conservative limit applies.
func probeLowerdirPlus() bool {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return false
	}
	defer func() { _ = unix.Close(fd) }()
	return unix.FsconfigSetString(fd, "lowerdir+", "/") == nil
}

// overlayOptions returns the options with which the local engine mounts
// layers (base first) where the kernel lacks "lowerdir+": one string,
// top layer first, that the kernel reads from a single page, its NUL
// included (setup_rootfs in pkg/runtime/local/nsenter/nsenter.c, whose
// tmpfs, upper and work directories are under RunDir).
func (s *Store) overlayOptions(layers []string) string {
	lower := slices.Clone(layers)
	slices.Reverse(lower)
	return "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + filepath.Join(s.RunDir(), "upper") +
		",workdir=" + filepath.Join(s.RunDir(), "work")
}

// checkMountable refuses, with ErrUnsupported, an image whose layers (base
// first, each once) one overlay mount cannot take: none at all, more than
// maxOverlayLayers, or, on a kernel without "lowerdir+", more than the
// page of mount options holds with this cache's paths.
func (s *Store) checkMountable(layers []string) error {
	switch {
	case len(layers) == 0:
		return fmt.Errorf("%w: the image has no layers, so no file system to run a command from; "+
			"choose an image with at least one layer", ErrUnsupported)
	case len(layers) > maxOverlayLayers:
		return fmt.Errorf("%w: the image has %d layers, more than the %d one overlay mount takes; "+
			"squash it into fewer layers", ErrUnsupported, len(layers), maxOverlayLayers)
	case lowerdirPlus():
		return nil
	}
	page := os.Getpagesize()
	if n := len(s.overlayOptions(layers)); n >= page {
		return fmt.Errorf("%w: the image has %d layers, too many for one overlay mount on this kernel: "+
			"with the cache in %s their paths make %d bytes of mount options, over the limit of %d "+
			"(Linux 6.8 and later take up to %d layers); squash the image into fewer layers, or use a cache "+
			"directory with a shorter path", ErrUnsupported, len(layers), s.dir, n, page-1, maxOverlayLayers)
	}
	return nil
}

// layerPaths returns the directories the layers with diffIDs (base first)
// are unpacked into, each once (see keepLast).
func (s *Store) layerPaths(diffIDs []v1.Hash) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		out[i] = s.layerFS(d.Hex)
	}
	return keepLast(out)
}
