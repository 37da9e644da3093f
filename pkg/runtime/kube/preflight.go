package kube

import (
	"context"
	"errors"
	"net/http/httptrace"
	"sync"

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

// askAhead asks preflight's access question while the pods are looked up
// with the returned context: the answer is the same for every pod of the
// namespace. It asks once the lookup has its connection, so that both go
// over the one HTTP/2 connection rather than two dialled at once (and two
// TLS handshakes); a lookup that never connects (a fake client) leaves the
// question to preflight. wait waits for the question, bound by ctx.
func (b *call) askAhead(ctx context.Context, interactive bool) (lookup context.Context, wait func()) {
	b.reviews = &reviewCache{}
	var once sync.Once
	var asked sync.WaitGroup
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		once.Do(func() {
			asked.Add(1)
			go func() {
				defer asked.Done()
				_ = b.checkAccess(ctx, b.namespace, interactive)
			}()
		})
	}}
	return httptrace.WithClientTrace(ctx, trace), asked.Wait
}

// refused reports whether err is the API server's refusal of a patch,
// rather than a patch whose fate is unknown (a lost connection).
func refused(err error) bool {
	return errors.Is(err, ErrDenied) || errors.Is(err, runtime.ErrPermission) || errors.Is(err, runtime.ErrInvalidSpec) || errors.Is(err, ErrDisabled)
}
