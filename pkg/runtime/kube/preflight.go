package kube

import (
	"context"
	"errors"
	"fmt"

	"github.com/ephem-dev/ephem/pkg/runtime"
	corev1 "k8s.io/api/core/v1"
)

// preflight asks the API server, before anything changes, whether the user
// may reach the debug container once it is added: attach for -i, read its
// logs otherwise (the access review, about 3 ms, asked once per fan-out).
// Ephemeral containers cannot be removed, and a container the user cannot
// reach would stay in the pod for nothing. What admission or RBAC think of
// the container itself needs no question of its own: the patch is one
// request, which the API server applies whole or refuses whole, so a
// refused patch has added nothing (addDebugContainer).
func (b *call) preflight(ctx context.Context, p *corev1.Pod, interactive bool) error {
	if err := b.checkAccess(ctx, p.Namespace, interactive); err != nil {
		return err
	}
	b.timer.Mark("access review")
	return nil
}

// addDebugContainer patches ec into p; a refusal (admission, RBAC, an
// invalid container) says that nothing was added.
func (b *call) addDebugContainer(ctx context.Context, p *corev1.Pod, ec *corev1.EphemeralContainer) (*corev1.Pod, error) {
	q, err := b.addContainer(ctx, p, ec, false)
	if err != nil && refused(err) {
		return nil, fmt.Errorf("refused (nothing was added to pod %s): %w", p.Name, err)
	}
	return q, err
}

// refused reports whether err is the API server's refusal of a patch,
// rather than a patch whose fate is unknown (a lost connection).
func refused(err error) bool {
	return errors.Is(err, ErrDenied) || errors.Is(err, runtime.ErrPermission) || errors.Is(err, runtime.ErrInvalidSpec) || errors.Is(err, ErrDisabled)
}
