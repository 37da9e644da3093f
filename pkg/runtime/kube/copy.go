package kube

import (
	"context"

	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	corev1 "k8s.io/api/core/v1"
)

// CopyOptions are kubectl debug's --copy-to flags.
type CopyOptions struct {
	// Name is the copy's name (--copy-to).
	Name string
	// Replace deletes the original pod after copying (--replace).
	Replace bool
	// SameNode schedules the copy on the original's node (--same-node).
	SameNode bool
	// ShareProcesses sets shareProcessNamespace on the copy (default true).
	ShareProcesses bool
	// SetImages changes containers' images: name=image, "*" for all (--set-image).
	SetImages map[string]string
	// KeepLabels, KeepAnnotations, KeepLiveness, KeepReadiness, KeepStartup
	// and KeepInitContainers keep what the copy otherwise drops (--keep-*).
	KeepLabels, KeepAnnotations, KeepLiveness, KeepReadiness, KeepStartup, KeepInitContainers bool
}

func (b *Backend) debugCopy(ctx context.Context, p *corev1.Pod, containerName string, c spec.Container, streams session.Streams) error {
	panic("unimplemented: copy")
}

func (b *Backend) debugNode(ctx context.Context, node string, c spec.Container, streams session.Streams) error {
	panic("unimplemented: node")
}
