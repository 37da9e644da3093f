package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/ephem-dev/ephem/pkg/runtime"
)

// filesystemsFile lists the kernel's filesystems.
const filesystemsFile = "/proc/filesystems"

// checkOverlay fails with ErrUnsupported unless the kernel has overlayfs,
// loading the module once if it is not loaded yet.
func checkOverlay(ctx context.Context) error {
	if hasOverlay() {
		return nil
	}
	if path, err := exec.LookPath("modprobe"); err == nil {
		_ = exec.CommandContext(ctx, path, "overlay").Run()
		if hasOverlay() {
			return nil
		}
	}
	return fmt.Errorf("%w: this kernel has no overlay filesystem, which the debug container's root needs: load it with 'modprobe overlay' or use a kernel built with CONFIG_OVERLAY_FS", runtime.ErrUnsupported)
}

func hasOverlay() bool {
	b, err := os.ReadFile(filesystemsFile)
	if err != nil {
		return true // cannot tell: let the mount decide
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := bytes.Fields(line); len(f) > 0 && string(f[len(f)-1]) == "overlay" {
			return true
		}
	}
	return false
}
