package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOverlayOptionsPage checks checkMountable's arithmetic against the
// kernel: mount(2) with the options of overlayOptions, as nsenter.c mounts
// where the kernel lacks "lowerdir+", works when checkMountable accepts the
// layers, and fails when it refuses them for one byte too many.
func TestOverlayOptionsPage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	old := lowerdirPlus
	lowerdirPlus = func() bool { return false }
	t.Cleanup(func() { lowerdirPlus = old })
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The engine's layout: a tmpfs on run/ holding upper/, work/ and root/.
	if err := unix.Mount("tmpfs", s.RunDir(), "tmpfs", 0, "mode=0755"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(s.RunDir(), unix.MNT_DETACH) })
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(s.RunDir(), d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	page := os.Getpagesize()
	for _, n := range []int{page - 1, page} {
		layers := layersOfLength(t, s, n)
		checkErr := s.checkMountable(layers)
		root := filepath.Join(s.RunDir(), "root")
		mountErr := unix.Mount("overlay", root, "overlay", 0, s.overlayOptions(layers))
		if mountErr == nil {
			_ = unix.Unmount(root, unix.MNT_DETACH)
		}
		if errors.Is(mountErr, unix.ENODEV) {
			t.Skip("no overlayfs")
		}
		fits := n < page
		if (checkErr == nil) != fits || (mountErr == nil) != fits || (checkErr != nil && !errors.Is(checkErr, ErrUnsupported)) {
			t.Errorf("%d layers, options of %d bytes (page %d): checkMountable %v, mount %v; want both to %s",
				len(layers), n, page, checkErr, mountErr, map[bool]string{true: "succeed", false: "fail"}[fits])
		}
	}
}

// layersOfLength creates layer directories for which s.overlayOptions is
// exactly want bytes long.
func layersOfLength(t *testing.T, s *Store, want int) []string {
	t.Helper()
	base := t.TempDir()
	var layers []string
	for i := 0; ; i++ {
		// The name length that would make the options want bytes long.
		n := want - len(s.overlayOptions(append(layers, base+"/")))
		size := 200
		switch {
		case n < 4:
			t.Fatalf("cannot make options of %d bytes", want)
		case n <= 255:
			size = n
		case n-size-len(base)-2 < 4:
			size = 100 // leave the last layer a name of some length
		}
		p := filepath.Join(base, fmt.Sprintf("%03d", i)+strings.Repeat("x", size-3))
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, p)
		if size == n {
			break
		}
	}
	if got := len(s.overlayOptions(layers)); got != want {
		t.Fatalf("options of %d bytes, want %d", got, want)
	}
	return layers
}
