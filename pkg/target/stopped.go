package target

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoLayers marks a stopped container whose filesystem ephem cannot
// stack: a storage driver other than overlay (exit 69).
var ErrNoLayers = errors.New("unsupported storage")

// dockerStopped is the Process of a Docker container that is not running:
// its writable layer and its image's layers, from the overlay2 driver.
func dockerStopped(name string, in dockerInspect) (Process, error) {
	desc := "docker container " + name
	if in.GraphDriver.Name != "overlay2" {
		driver := in.GraphDriver.Name
		if driver == "" {
			driver = "none (the containerd image store?)"
		}
		return Process{}, fmt.Errorf("%w: %s is not running, and its storage driver is %s: ephem reads a stopped container's layers only from overlay2; start it, or use docker cp",
			ErrNoLayers, desc, driver)
	}
	upper := in.GraphDriver.Data["UpperDir"]
	layers := []string{upper}
	if lower := in.GraphDriver.Data["LowerDir"]; lower != "" {
		layers = append(layers, strings.Split(lower, ":")...)
	}
	if err := checkLayers(layers); err != nil {
		return Process{}, fmt.Errorf("%w: %s: %w", ErrNoLayers, desc, err)
	}
	return Process{Description: desc, Stopped: &Filesystem{Layers: layers, State: dockerState(in)}}, nil
}

// dockerState says why a Docker container runs nothing, for the notice.
func dockerState(in dockerInspect) string {
	s := in.State
	finished, err := time.Parse(time.RFC3339Nano, s.FinishedAt)
	if s.Status == "created" || err != nil || finished.Year() < 2 {
		return s.Status + ", never started"
	}
	what := fmt.Sprintf("exited with code %d at %s", s.ExitCode, finished.UTC().Format(time.RFC3339))
	if s.Restarting {
		what = "restarting, " + what
	}
	return what
}

// checkLayers refuses layer directories that are not absolute paths or that
// an overlay mount's options cannot carry.
func checkLayers(layers []string) error {
	for _, l := range layers {
		if l == "" || !filepath.IsAbs(l) || filepath.Clean(l) != l || strings.ContainsAny(l, ",:\\\n") {
			return fmt.Errorf("layer directory %q is not a plain absolute path", l)
		}
	}
	return nil
}

// notRunningError is containerd's answer for a container with no running
// task: ResolveContainerd then stacks its snapshot instead.
type notRunningError struct {
	ns, id, state string
	err           error
}

func (e *notRunningError) Error() string { return e.err.Error() }
func (e *notRunningError) Unwrap() error { return e.err }

// containerdStopped is the Process of containerd container ns/id, which
// has no running task: the layers of its snapshot, from the snapshotter's
// mounts (an overlay's upperdir and lowerdirs, or a bind of one directory).
func (c *ContainerdClient) containerdStopped(ctx context.Context, nr *notRunningError) (Process, error) {
	desc := "containerd container " + nr.ns + "/" + nr.id
	ctx, cancel := context.WithTimeout(ctx, containerdTimeout)
	defer cancel()
	if err := c.connect(ctx); err != nil {
		return Process{}, err
	}
	var got ctrdContainerList
	get := &h2Call{ns: nr.ns, method: containerGetMethod, req: ctrdIDReq(nr.id), resp: &got}
	if c.h2.batch(ctx, get); get.err != nil {
		return Process{}, c.apiError(get.err)
	}
	if len(got) != 1 {
		return Process{}, fmt.Errorf("%w: containerd at %s answered Get with no container", ErrUnreachable, c.address)
	}
	ctr := got[0]
	if ctr.snapshotKey == "" {
		return Process{}, fmt.Errorf("%w: %s is not running and has no snapshot (no root filesystem) to read", ErrNoLayers, desc)
	}
	var mounts ctrdMounts
	mc := &h2Call{ns: nr.ns, method: snapshotMountsMethod, req: ctrdMountsReq(ctr.snapshotter, ctr.snapshotKey), resp: &mounts}
	if c.h2.batch(ctx, mc); mc.err != nil {
		return Process{}, fmt.Errorf("%s is not running, and reading its snapshot: %w", desc, c.apiError(mc.err))
	}
	var layers []string
	if len(mounts) == 1 {
		layers = mountLayers(mounts[0].typ, mounts[0].source, mounts[0].options)
	}
	if len(layers) == 0 {
		return Process{}, fmt.Errorf("%w: %s is not running, and its snapshotter %s is not an overlay one: ephem reads a stopped container's layers only from overlayfs snapshots",
			ErrNoLayers, desc, ctr.snapshotter)
	}
	if err := checkLayers(layers); err != nil {
		return Process{}, fmt.Errorf("%w: %s: %w", ErrNoLayers, desc, err)
	}
	return Process{Description: desc, Stopped: &Filesystem{Layers: layers, State: nr.state}}, nil
}

// mountLayers returns the directories, topmost first, that a snapshot's
// mount stacks: an overlay's upperdir then lowerdirs, or a bind's source
// (a snapshot with no parent). Nil for any other mount.
func mountLayers(typ, source string, options []string) []string {
	switch typ {
	case "bind", "rbind":
		return []string{source}
	case "overlay":
		var upper string
		var lower []string
		for _, o := range options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				upper = v
			} else if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lower = strings.Split(v, ":")
			}
		}
		if upper == "" {
			return lower
		}
		return append([]string{upper}, lower...)
	}
	return nil
}

// taskState says why a containerd task runs nothing, for the notice.
func taskState(status string, code uint32, at time.Time) string {
	if status != "stopped" || at.Year() < 2 {
		return "its task is " + status
	}
	return fmt.Sprintf("exited with code %d at %s", code, at.UTC().Format(time.RFC3339))
}
