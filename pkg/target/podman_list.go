package target

// PodmanContainer is one podman container as PodmanContainers lists it.
type PodmanContainer struct {
	// Ref is its full reference, podman://USER/NAME.
	Ref string
	// Name is its name.
	Name string
	// Running says whether it runs.
	Running bool
}

// PodmanContainers lists the podman containers this user may debug, read
// from podman's storages as ResolvePodman reads them (no podman, no
// service): for completion. A storage that cannot be read is left out.
func PodmanContainers() []PodmanContainer {
	h := defaultPodmanHost()
	stores, err := h.stores("")
	if err != nil {
		return nil
	}
	var out []PodmanContainer
	for _, s := range stores {
		list, err := s.containers()
		if err != nil {
			continue
		}
		for _, c := range list {
			out = append(out, PodmanContainer{Ref: c.ref(), Name: c.name(), Running: h.runningPID(c) > 0})
		}
	}
	return out
}
