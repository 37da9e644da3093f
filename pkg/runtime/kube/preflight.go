package kube

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// preflight asks the API server what would refuse the container: RBAC for
// the session (the access review), then admission (the dry-run patch). They
// run one after the other, never side by side: a refused review sends
// nothing that names the container (TestRBACAttachRefusedBeforeAnyChange),
// and the review costs about 2 ms. In a fan-out, the pods of one
// controller share one preflight (preflightCache).
func (b *call) preflight(ctx context.Context, p *corev1.Pod, ec *corev1.EphemeralContainer, interactive bool) error {
	ask := func() error {
		if err := b.checkAccess(ctx, p.Namespace, interactive); err != nil {
			return err
		}
		b.timer.Mark("access review")
		if _, err := b.addContainer(ctx, p, ec, true); err != nil {
			return fmt.Errorf("preflight (nothing was added to pod %s): %w", p.Name, err)
		}
		b.timer.Mark("dry run")
		return nil
	}
	if b.preflights == nil {
		return ask()
	}
	return b.preflights.check(p, ec, ask)
}

// preflightCache holds the preflight of each group of a fan-out's pods
// that admission sees alike: the pods of one controller (a ReplicaSet's,
// a StatefulSet's...) share their template, so the same debug container
// is admitted or refused in each. One dry run per group instead of one per
// pod takes that many requests off an API server that thirty pods keep
// busy; a pod of no controller has its own.
type preflightCache struct {
	mu     sync.Mutex
	groups map[string]*preflightGroup
}

// preflightGroup is one group's preflight, asked once.
type preflightGroup struct {
	once  sync.Once
	asker string // the pod whose preflight it is
	err   error
}

// check runs ask, or waits for the preflight of p's group and returns its
// answer for p.
func (c *preflightCache) check(p *corev1.Pod, ec *corev1.EphemeralContainer, ask func() error) error {
	owner := metav1.GetControllerOf(p)
	if owner == nil {
		return ask()
	}
	key := p.Namespace + "/" + string(owner.UID) + "/" + ec.TargetContainerName
	c.mu.Lock()
	if c.groups == nil {
		c.groups = map[string]*preflightGroup{}
	}
	g := c.groups[key]
	if g == nil {
		g = &preflightGroup{asker: p.Name}
		c.groups[key] = g
	}
	c.mu.Unlock()
	g.once.Do(func() { g.err = ask() })
	if g.err == nil || g.asker == p.Name {
		return g.err
	}
	return fmt.Errorf("preflight (nothing was added to pod %s; asked for pod %s, of the same %s %s): %w",
		p.Name, g.asker, owner.Kind, owner.Name, g.err)
}
