package kube

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"
)

// managedByLabel marks the pods ephem creates for node debugging.
const managedByLabel = "app.kubernetes.io/managed-by"

// hostRootVolume is the volume holding the node's root filesystem.
const hostRootVolume = "host-root"

// deleteTimeout bounds the deletion of a node debugging pod at the end,
// which runs even when the session's context was cancelled.
var deleteTimeout = 30 * time.Second

// debugNode debugs node (node/NAME) as kubectl debug does: a pod on the
// node in the host's PID, network and IPC namespaces with the host's root
// filesystem at /host. With --rm (RemoveNodePod) the pod is deleted at the
// end, whatever the outcome.
func (b *call) debugNode(ctx context.Context, node string, c spec.Container, streams session.Streams) error {
	b.timer = runtime.NewTimer(b.opts.Log)
	defer b.timer.Report()
	if _, err := b.client.GetNode(ctx, node); err != nil {
		return b.nodeError(err, node)
	}
	b.timer.Mark("node")
	p, err := b.nodePod(node, c)
	if err != nil {
		return err
	}
	created, err := b.createPod(ctx, p, c.Stdin, streams.Out)
	if err != nil || created == nil {
		return err
	}
	name := created.Spec.Containers[0].Name
	fmt.Fprintf(b.opts.Log, "created pod %s on node %s, debugging container %s\n", created.Name, node, name)
	detached := false
	defer func() {
		if !b.opts.RemoveNodePod || detached {
			fmt.Fprintf(b.opts.Log, "pod %s is kept; delete it with: kubectl delete pod %s -n %s\n", created.Name, created.Name, created.Namespace)
			return
		}
		b.removePod(ctx, created)
	}()
	detached, err = b.podSession(ctx, created, name, c, streams)
	return err
}

// createPod creates p, a debugging pod, once the user is found allowed to
// create it (and, with stdin, to attach to it). With --dry-run it prints p
// to out instead and returns a nil pod.
func (b *call) createPod(ctx context.Context, p *corev1.Pod, stdin bool, out io.Writer) (*corev1.Pod, error) {
	if b.opts.DryRun {
		return nil, printObject(out, p)
	}
	if err := b.checkAccess(ctx, p.Namespace, stdin); err != nil {
		return nil, err
	}
	created, err := b.client.CreatePod(ctx, p)
	if err != nil {
		return nil, b.createError(err, p)
	}
	b.timer.Mark("create")
	return created, nil
}

// removePod deletes p with a fresh context, so that it goes also when ctx
// was cancelled, and says how to delete it when that fails.
func (b *call) removePod(ctx context.Context, p *corev1.Pod) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	if err := b.client.DeletePod(ctx, p.Namespace, p.Name); err != nil && !apierrors.IsNotFound(err) {
		fmt.Fprintf(b.opts.Log, "could not delete pod %s: %s; delete it with: kubectl delete pod %s -n %s\n", p.Name, apiMessage(err), p.Name, p.Namespace)
	}
}

// nodePod returns the pod kubectl's generateNodeDebugPod makes: named
// node-debugger-NODE-xxxxx, on node, tolerating every taint, never
// restarted, in the host's namespaces, with the host's root at /host.
func (b *call) nodePod(node string, c spec.Container) (*corev1.Pod, error) {
	if c.Name == "" {
		c.Name = "debugger"
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("node-debugger-%s-%s", node, nameSuffix()),
			Namespace: b.namespace,
			Labels:    map[string]string{managedByLabel: "ephem"},
		},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: corev1.RestartPolicyNever,
			Tolerations:   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			// What of the host the pod shares is the profile's choice,
			// as kubectl's: baseline and restricted share nothing.
			HostPID:     c.Host.Namespaces,
			HostNetwork: c.Host.Namespaces,
			HostIPC:     c.Host.Namespaces,
		},
	}
	if c.Host.Root {
		p.Spec.Volumes = []corev1.Volume{{Name: hostRootVolume, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	}
	ctr, err := b.podContainer(p, c, c.Name, func(ctr *corev1.Container) {
		if c.Host.Root {
			ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: hostRootVolume, MountPath: "/host"})
		}
	})
	if err != nil {
		return nil, err
	}
	p.Spec.Containers = []corev1.Container{ctr}
	return p, nil
}

// podSession is session for a regular container of a pod ephem created:
// it waits for the container to run, attaches to it or streams its
// output, and returns its exit code. It reports whether the user detached.
func (b *call) podSession(ctx context.Context, p *corev1.Pod, name string, c spec.Container, streams session.Streams) (bool, error) {
	v := *b
	v.client = statusView{b.client}
	p, err := v.waitFor(ctx, asEphemeral(p), name, "running", running)
	if err != nil && ctx.Err() != nil {
		return false, interrupted(ctx, p, name)
	}
	if err != nil {
		return false, err
	}
	b.timer.Mark("running")
	s, _ := containerStatus(p, name)
	switch {
	case s.State.Terminated != nil:
		err = v.podLogs(ctx, p, name, streams.Out, false)
	case c.Stdin:
		detached, aerr := v.attach(ctx, p, name, c.TTY, streams)
		if detached {
			fmt.Fprintf(b.opts.Log, "detached: %s keeps running; reattach with: ephem attach pod/%s/%s -n %s\n", name, p.Name, name, p.Namespace)
			return true, nil
		}
		if aerr != nil {
			// As kubectl does: the container may have ended (and, in a
			// copy that restarts always, started again) under the
			// attachment; show what it printed.
			fmt.Fprintf(b.opts.Log, "warning: couldn't attach to %s, showing its output instead: %v\n", name, aerr)
			if q, gerr := v.client.GetPod(ctx, p.Namespace, p.Name); gerr == nil {
				p = q
			}
			err = v.podLogs(ctx, p, name, streams.Out, false)
		}
	default:
		err = v.logs(ctx, p, name, streams.Out, true)
	}
	if err != nil {
		return false, err
	}
	b.timer.Mark("session")
	defer b.timer.Mark("terminated")
	if ctx.Err() != nil {
		return false, interrupted(ctx, p, name)
	}
	err = v.exitCode(ctx, p, name)
	if err != nil && ctx.Err() != nil {
		return false, interrupted(ctx, p, name)
	}
	return false, err
}

// interrupted is the error of a session ended by a signal (ctx
// cancelled): exit code 130, as a shell reports SIGINT.
func interrupted(ctx context.Context, p *corev1.Pod, name string) error {
	return &runtime.ExitError{Code: 130, Err: fmt.Errorf("interrupted while following %s in pod %s: %w", name, p.Name, ctx.Err())}
}

// podLogs copies the output of container name to w: that of its first
// run when it has been restarted since.
func (b *call) podLogs(ctx context.Context, p *corev1.Pod, name string, w io.Writer, follow bool) error {
	s, _ := containerStatus(p, name)
	previous := s.RestartCount > 0 && s.State.Terminated != nil
	if !previous {
		return b.logs(ctx, p, name, w, follow)
	}
	rc, err := b.client.PodLogs(ctx, p.Namespace, p.Name, &corev1.PodLogOptions{Container: name, Previous: true})
	if err != nil {
		return fmt.Errorf("%w: reading the output of %s in pod %s: %s", runtime.ErrOS, name, p.Name, apiMessage(err))
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: reading the output of %s: %w", runtime.ErrOS, name, err)
	}
	return nil
}

// statusView shows a pod's regular container statuses where waitFor and
// exitCode read ephemeral ones, so that they serve pods ephem creates.
type statusView struct{ Client }

// GetPod implements Client with asEphemeral applied.
func (v statusView) GetPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	p, err := v.Client.GetPod(ctx, ns, name)
	if err != nil {
		return p, err
	}
	return asEphemeral(p), nil
}

// WatchPods implements Client with asEphemeral applied to every event.
func (v statusView) WatchPods(ctx context.Context, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := v.Client.WatchPods(ctx, ns, opts)
	if err != nil {
		return nil, err
	}
	vw := &viewWatch{in: w, out: make(chan watch.Event), done: make(chan struct{})}
	go vw.loop()
	return vw, nil
}

// viewWatch passes a watch's events on with asEphemeral applied to pods.
type viewWatch struct {
	in   watch.Interface
	out  chan watch.Event
	done chan struct{}
	once sync.Once
}

// ResultChan implements watch.Interface.
func (w *viewWatch) ResultChan() <-chan watch.Event { return w.out }

// Stop implements watch.Interface; it may be called more than once.
func (w *viewWatch) Stop() {
	w.once.Do(func() { close(w.done); w.in.Stop() })
}

func (w *viewWatch) loop() {
	defer close(w.out)
	for ev := range w.in.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok {
			ev.Object = asEphemeral(p)
		}
		select {
		case w.out <- ev:
		case <-w.done:
			return
		}
	}
}

// asEphemeral returns p with its init and regular container statuses as
// ephemeral ones. A container restarted after its first run (the copy of a
// pod that restarts always) shows that run's end. Containers without a
// status yet take the pod's scheduling failure, or a creation error when
// the kubelet rejected the pod, so that waiting reports or fails on it.
func asEphemeral(p *corev1.Pod) *corev1.Pod {
	q := *p
	var st []corev1.ContainerStatus
	have := map[string]bool{}
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.State.Terminated == nil && s.RestartCount > 0 && s.LastTerminationState.Terminated != nil {
			s.State = s.LastTerminationState
		}
		st = append(st, s)
		have[s.Name] = true
	}
	var waiting *corev1.ContainerStateWaiting
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			waiting = &corev1.ContainerStateWaiting{Reason: cond.Reason, Message: cond.Message}
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerError",
			Message: fmt.Sprintf("the kubelet rejected pod %s: %s: %s", p.Name, p.Status.Reason, p.Status.Message)}
	}
	if waiting != nil {
		for _, c := range p.Spec.Containers {
			if !have[c.Name] {
				st = append(st, corev1.ContainerStatus{Name: c.Name, State: corev1.ContainerState{Waiting: waiting}})
			}
		}
	}
	q.Status.EphemeralContainerStatuses = st
	return &q
}

// createError explains why the API server refused to create p.
func (b *call) createError(err error, p *corev1.Pod) error {
	msg := apiMessage(err)
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: pod %s already exists in namespace %s: pick another name, or delete it with: kubectl delete pod %s -n %s", runtime.ErrInvalidSpec, p.Name, p.Namespace, p.Name, p.Namespace)
	case apierrors.IsForbidden(err) && strings.Contains(msg, "PodSecurity"):
		return fmt.Errorf("%w: namespace %s does not admit pod %s: use a profile it admits, or another namespace (-n): %s", ErrDenied, p.Namespace, p.Name, msg)
	case apierrors.IsForbidden(err) && strings.Contains(msg, " cannot create resource"):
		return fmt.Errorf("%w: you may not create pods in namespace %s (RBAC: verb create on pods): %s", runtime.ErrPermission, p.Namespace, msg)
	case apierrors.IsForbidden(err):
		// An admission plugin or webhook: quotas, service accounts, policies.
		return fmt.Errorf("%w: the API server refused pod %s: %s", ErrDenied, p.Name, msg)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%w: the API server rejected pod %s: %s", runtime.ErrInvalidSpec, p.Name, msg)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: the API server did not accept your credentials: %s", runtime.ErrPermission, msg)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: creating pod %s: %s", target.ErrNotFound, p.Name, msg)
	}
	return fmt.Errorf("%w: creating pod %s: %w", runtime.ErrOS, p.Name, err)
}

// nodeError turns an error reading node into ephem's sentinels.
func (b *call) nodeError(err error, node string) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: no node %q: list them with kubectl get nodes", target.ErrNotFound, node)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: you may not read node %s (RBAC: verb get on nodes): %s", runtime.ErrPermission, node, apiMessage(err))
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: the API server did not accept your credentials: %s", runtime.ErrPermission, apiMessage(err))
	}
	return fmt.Errorf("%w: reading node %q: %w", target.ErrUnreachable, node, err)
}

// printObject writes a pod ephem would create as YAML (--dry-run).
func printObject(w io.Writer, p *corev1.Pod) error {
	y, err := yaml.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding pod %s: %w", p.Name, err)
	}
	_, err = w.Write(y)
	return err
}
