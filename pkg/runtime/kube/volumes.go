package kube

import (
	"fmt"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	corev1 "k8s.io/api/core/v1"
)

// targetMounts returns the volume mounts a debug container gets with
// --mount-target-volumes: the target container's own, at the same paths,
// read-only where the target's are, so that a ConfigMap, Secret or PVC is
// readable where the application reads it. Ephemeral containers may only
// mount the pod's existing volumes, and the API server forbids subPath and
// subPathExpr in them: such a mount is refused (69) naming the volume, as
// is a raw block device (volumeDevices), which ephem does not hand to
// debug containers. Bidirectional propagation, which would let the
// debugger's mounts reach the node, becomes HostToContainer.
//
// The target must be unambiguous: named (--target, pod/NAME/CONTAINER or
// the pod's default-container annotation) or the pod's only container.
func targetMounts(p *corev1.Pod, c spec.Container, targetName string) ([]corev1.VolumeMount, error) {
	if c.TargetContainer == "" && p.Annotations[defaultContainerAnnotation] == "" && len(p.Spec.Containers) > 1 {
		return nil, fmt.Errorf("%w: --mount-target-volumes: pod %s has %d containers: name the one whose volumes to mount with --target",
			runtime.ErrUsage, p.Name, len(p.Spec.Containers))
	}
	t, ok := containerNamed(p, targetName)
	if !ok {
		return nil, fmt.Errorf("%w: --mount-target-volumes: pod %s has no container %q to take the volumes of", runtime.ErrUsage, p.Name, targetName)
	}
	if len(t.VolumeDevices) > 0 {
		d := t.VolumeDevices[0]
		return nil, fmt.Errorf("%w: --mount-target-volumes: container %s uses volume %q as a raw block device at %s (volumeDevices), "+
			"which ephem does not give debug containers: drop the flag", runtime.ErrUnsupported, t.Name, d.Name, d.DevicePath)
	}
	var mounts []corev1.VolumeMount // nil when none, as the API server returns it (--reuse compares)
	for _, m := range t.VolumeMounts {
		switch {
		case m.SubPathExpr != "":
			return nil, subPathError(t.Name, m, "subPathExpr "+m.SubPathExpr)
		case m.SubPath != "":
			return nil, subPathError(t.Name, m, "subPath "+m.SubPath)
		}
		m = *m.DeepCopy()
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			h := corev1.MountPropagationHostToContainer
			m.MountPropagation = &h
		}
		mounts = append(mounts, m)
	}
	return mounts, nil
}

// subPathError refuses a mount of part of a volume, which the API server
// forbids in ephemeral containers, and says where the file can be read.
func subPathError(ctr string, m corev1.VolumeMount, what string) error {
	return fmt.Errorf("%w: --mount-target-volumes: container %s mounts volume %q at %s with %s, which Kubernetes forbids in "+
		"ephemeral containers: drop the flag and read it as /proc/1/root%s (the default profile shares the target's processes)",
		runtime.ErrUnsupported, ctr, m.Name, m.MountPath, what, m.MountPath)
}
