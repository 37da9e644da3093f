package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/sys/unix"
)

// A target that runs nothing (target.Process.Stopped: a container that is
// not running, or image://REF) has no namespaces to join. The debug
// container gets new ones (network: loopback only) and the target's layers
// stacked read-only at /target; nothing is written into them.

// stoppedMount is where a stopped target's filesystem appears in the debug
// container.
const stoppedMount = "/target"

// stoppedNamespaces are the namespaces the constructor creates for a
// session on a stopped target, besides the mount namespace it always
// creates and the PID namespace nsenter.EnvNewPID asks for.
const stoppedNamespaces = "net,ipc,uts,cgroup"

// resolveAny is resolve that also accepts a target that runs nothing; a
// stopped container whose layers ephem cannot read is ErrUnsupported.
func (e *Engine) resolveAny(ctx context.Context, ref target.Ref) (target.Process, error) {
	proc, err := target.Resolve(ctx, ref)
	if errors.Is(err, target.ErrNoLayers) {
		return proc, unsupportedError{err}
	}
	if err == nil && proc.Chosen != "" {
		fmt.Fprintf(e.opts.Log, "ephem: %q is %s, its only match on this host\n", ref.Raw, proc.Chosen)
	}
	if err == nil && proc.ViaProc {
		fmt.Fprintf(e.opts.Log, "ephem: the runtime did not answer: using %s, pid %d\n", proc.Description, proc.PID)
	}
	return proc, err
}

// unsupportedError makes an error of pkg/target exit as ErrUnsupported.
type unsupportedError struct{ error }

func (e unsupportedError) Unwrap() error        { return e.error }
func (e unsupportedError) Is(target error) bool { return target == runtime.ErrUnsupported }

// notRunning is the error of the verbs that need a running target (ns,
// port-forward, capture) on one that runs nothing.
func notRunning(proc target.Process) error {
	what := "is not running (" + proc.Stopped.State + ")"
	if proc.Stopped.Image != "" {
		what = "runs nothing"
	}
	return fmt.Errorf("%w: %s %s: only ephem debug and ephem cp work on a target that runs nothing",
		target.ErrNotFound, proc.Description, what)
}

// stoppedLayers returns the directories of proc's filesystem, topmost
// first: an image:// target's image pulled through the cache like --image,
// or a stopped container's layers, which must still exist.
func stoppedLayers(ctx context.Context, images *image.Store, pull image.PullOptions, fs *target.Filesystem) ([]string, error) {
	if fs.Image != "" {
		img, err := images.Ensure(ctx, fs.Image, pull)
		if err != nil {
			return nil, fmt.Errorf("getting image %s: %w", fs.Image, err)
		}
		if len(img.Layers) == 0 {
			return nil, fmt.Errorf("%w: image %s has no layers: there is no filesystem to show", runtime.ErrUnsupported, fs.Image)
		}
		layers := make([]string, len(img.Layers))
		for i, l := range img.Layers {
			layers[len(layers)-1-i] = l
		}
		return layers, nil
	}
	for _, l := range fs.Layers {
		if fi, err := os.Stat(l); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%w: the layer directory %s is gone (was the container removed?)", target.ErrNotFound, l)
		}
	}
	return fs.Layers, nil
}

// stoppedNotice is the line on stderr that says what a session on a
// target that runs nothing gets.
func stoppedNotice(proc target.Process) string {
	what := "is not running (" + proc.Stopped.State + ")"
	if proc.Stopped.Image != "" {
		what = "runs nothing"
	}
	return fmt.Sprintf("ephem: %s %s: new namespaces (network: loopback only), its filesystem read-only at %s\n",
		proc.Description, what, stoppedMount)
}

// stoppedEnv is what the constructor needs for a stopped target: new
// namespaces instead of joined ones.
func stoppedEnv() []string {
	return []string{nsenter.EnvUnshare + "=" + stoppedNamespaces, nsenter.EnvNewPID + "=1"}
}

// readOnlyMount are the attributes of a stopped target's filesystem.
const readOnlyMount = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID

// readOnlyLayers returns a detached mount of layers (topmost first),
// read-only, nodev and nosuid: an overlay with lowerdirs only, which
// writes nothing into them, or a bind of a single layer. It is in no mount
// table until attached, and goes when its descriptor closes.
func readOnlyLayers(layers []string) (int, error) {
	if len(layers) == 1 {
		fd, err := unix.OpenTree(unix.AT_FDCWD, layers[0], unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return -1, fmt.Errorf("binding the target's layer %s: %w", layers[0], err)
		}
		attr := unix.MountAttr{Attr_set: readOnlyMount}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			_ = unix.Close(fd)
			return -1, fmt.Errorf("making the target's layer read-only: %w", err)
		}
		return fd, nil
	}
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("opening an overlay for the target's layers: %w", err)
	}
	defer func() { _ = unix.Close(fs) }()
	for _, l := range layers {
		err := unix.FsconfigSetString(fs, "lowerdir+", l)
		if errors.Is(err, unix.EINVAL) && l == layers[0] {
			// A kernel before 6.8 has no "lowerdir+": one option,
			// limited to a page.
			opt := strings.Join(layers, ":")
			if len(opt)+len("lowerdir=") >= os.Getpagesize() {
				return -1, fmt.Errorf("%w: the target's %d layers do not fit in one overlay mount on this kernel (Linux 6.8 lifts the limit)", runtime.ErrUnsupported, len(layers))
			}
			err = unix.FsconfigSetString(fs, "lowerdir", opt)
			if err == nil {
				break
			}
		}
		if err != nil {
			return -1, fmt.Errorf("stacking the target's layer %s: %w", l, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("%w: mounting the target's layers as an overlay: %w", runtime.ErrOS, err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, readOnlyMount)
	if err != nil {
		return -1, fmt.Errorf("%w: mounting the target's layers: %w", runtime.ErrOS, err)
	}
	return fd, nil
}

// prepareStopped returns the layers of proc, topmost first, when it runs
// nothing (nil when it runs), and says on the log what the session gets.
// An image:// target's image is pulled here, before the debug image.
func (e *Engine) prepareStopped(ctx context.Context, images *image.Store, pull image.PullOptions, proc target.Process) ([]string, error) {
	if proc.Stopped == nil {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: %s runs nothing, and mounting its filesystem at %s needs root: run ephem as root", runtime.ErrPermission, proc.Description, stoppedMount)
	}
	layers, err := stoppedLayers(ctx, images, pull, proc.Stopped)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(e.opts.Log, stoppedNotice(proc))
	return layers, nil
}

// watched returns t for the session to watch for the target's exit, or nil
// for a target that runs nothing.
func (t *openTarget) watched() *openTarget {
	if t.pidfd < 0 {
		return nil
	}
	return t
}

// openStoppedRoot opens the filesystem of proc, a target that runs
// nothing, for ephem cp: its layers as a detached read-only mount, in no
// mount namespace, gone when the root is closed. Owners are the host's.
func (e *Engine) openStoppedRoot(ctx context.Context, ref target.Ref, proc target.Process) (*rootFS, error) {
	images := e.opts.Images
	if images == nil && proc.Stopped.Image != "" {
		var err error
		if images, err = image.Open(e.opts.CacheDir); err != nil {
			return nil, fmt.Errorf("opening the image cache: %w", err)
		}
		defer func() { _ = images.Close() }()
	}
	layers, err := stoppedLayers(ctx, images, e.opts.Pull, proc.Stopped)
	if err != nil {
		return nil, err
	}
	fd, err := readOnlyLayers(layers)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not running, and its filesystem cannot be mounted here: %w", runtime.ErrUnsupported, proc.Description, err)
	}
	host := []idRange{{0, 0, ^uint32(0)}}
	return &rootFS{fd: fd, ref: ref, uid: host, gid: host}, nil
}
