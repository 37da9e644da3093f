package kube

import (
	"context"
	"errors"

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
// refused patch has added nothing (addContainer).
func (b *call) preflight(ctx context.Context, p *corev1.Pod, interactive bool) error {
	if err := b.checkAccess(ctx, p.Namespace, interactive); err != nil {
		return err
	}
	b.timer.Mark("access review")
	return nil
}

// refused reports whether err is the API server's refusal of a patch,
// rather than a patch whose fate is unknown (a lost connection).
func refused(err error) bool {
	return errors.Is(err, ErrDenied) || errors.Is(err, runtime.ErrPermission) || errors.Is(err, runtime.ErrInvalidSpec) || errors.Is(err, ErrDisabled)
}
