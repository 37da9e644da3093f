package kube

import (
	"context"
	"fmt"
	"reflect"
	"sort"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	corev1 "k8s.io/api/core/v1"
)

// reusable returns a running debugger of p with the same image, security
// context, environment and volume mounts as ec (--reuse): one started
// without --env-from-target or --mount-target-volumes does not stand in
// for one with it.
func reusable(p *corev1.Pod, ec *corev1.EphemeralContainer) (string, bool) {
	for _, e := range p.Spec.EphemeralContainers {
		if e.Image != ec.Image || e.TargetContainerName != ec.TargetContainerName ||
			!reflect.DeepEqual(e.SecurityContext, ec.SecurityContext) || !e.Stdin ||
			!reflect.DeepEqual(e.Env, ec.Env) || !reflect.DeepEqual(e.EnvFrom, ec.EnvFrom) ||
			!reflect.DeepEqual(e.VolumeMounts, ec.VolumeMounts) {
			continue
		}
		if s, ok := containerStatus(p, e.Name); ok && s.State.Running != nil {
			return e.Name, true
		}
	}
	return "", false
}

// List implements runtime.Lister: the ephemeral containers of the pods ref
// names, or of every pod of the namespace (those -l selects) when ref names
// none. A session's ID is pod/NAME/CONTAINER, as ephem attach takes it.
func (b *Backend) List(ctx context.Context, ref target.Ref) ([]runtime.Session, error) {
	if ref.Scheme == target.SchemeNode {
		return nil, fmt.Errorf("%w: ls lists the debug containers of pods: name a pod or workload, not %s", runtime.ErrUsage, ref)
	}
	k, err := b.callFor(ref)
	if err != nil {
		return nil, err
	}
	pods, err := k.podsToList(ctx, ref)
	if err != nil {
		return nil, err
	}
	var out []runtime.Session
	for _, p := range pods {
		for _, e := range p.Spec.EphemeralContainers {
			out = append(out, sessionOf(p, e))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (b *call) podsToList(ctx context.Context, ref target.Ref) ([]*corev1.Pod, error) {
	if ref.Name != "" {
		return b.resolvePods(ctx, ref)
	}
	list, err := b.client.ListPods(ctx, b.namespace, b.opts.Selector)
	if err != nil {
		return nil, b.getError(err, "pods", b.opts.Selector)
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return pods, nil
}

// sessionOf describes the ephemeral container e of p.
func sessionOf(p *corev1.Pod, e corev1.EphemeralContainer) runtime.Session {
	s := runtime.Session{ID: "pod/" + p.Name + "/" + e.Name, Image: e.Image, Target: e.TargetContainerName,
		Command: append(append([]string{}, e.Command...), e.Args...), State: "Waiting"}
	if st, ok := containerStatus(p, e.Name); ok {
		switch {
		case st.State.Running != nil:
			s.State, s.Started = "Running", st.State.Running.StartedAt.Time
		case st.State.Terminated != nil:
			t := st.State.Terminated
			code := int(t.ExitCode)
			s.State, s.Started, s.ExitCode = "Terminated", t.StartedAt.Time, &code
		case st.State.Waiting != nil:
			s.State = st.State.Waiting.Reason
		}
	}
	return s
}

// Attach implements runtime.Attacher: it reattaches to the debug container
// ref names (pod/NAME/CONTAINER); one that has ended shows its output and
// exit code.
func (b *Backend) Attach(ctx context.Context, ref target.Ref, tty bool, streams session.Streams) error {
	if ref.Scheme != target.SchemePod || ref.Container == "" {
		return fmt.Errorf("%w: attach takes pod/NAME/CONTAINER, as ephem ls lists them", target.ErrInvalid)
	}
	k, err := b.callFor(ref)
	if err != nil {
		return err
	}
	return k.attachTo(ctx, ref, tty, streams)
}

func (b *call) attachTo(ctx context.Context, ref target.Ref, tty bool, streams session.Streams) error {
	pods, err := b.resolvePods(ctx, target.Ref{Scheme: target.SchemePod, Name: ref.Name})
	if err != nil {
		return err
	}
	p := pods[0]
	var ec *corev1.EphemeralContainer
	for i := range p.Spec.EphemeralContainers {
		if p.Spec.EphemeralContainers[i].Name == ref.Container {
			ec = &p.Spec.EphemeralContainers[i]
		}
	}
	if ec == nil {
		// A container of a pod ephem created (node/NAME, --copy-to).
		for _, ctr := range p.Spec.Containers {
			if ctr.Name == ref.Container {
				_, err := b.podSession(ctx, p, ctr.Name, spec.Container{Stdin: ctr.Stdin, TTY: ctr.TTY && tty}, streams)
				return err
			}
		}
		return fmt.Errorf("%w: pod %s has no debug container %q: see ephem ls pod/%s", target.ErrNotFound, p.Name, ref.Container, p.Name)
	}
	c := spec.Container{Stdin: ec.Stdin, TTY: ec.TTY && tty}
	if !ec.Stdin {
		fmt.Fprintf(b.opts.Log, "%s was started without -i: showing its output\n", ec.Name)
	}
	return b.session(ctx, p, ec.Name, c, streams)
}
